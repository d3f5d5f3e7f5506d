import { mongo } from 'mongoose';

/**
 * Runs `work` with the projection stripped from every findOneAndUpdate on its way to the server,
 * which then answers as a retried findAndModify on a replica set does (SERVER-31242): with the
 * stored document, without the command's projection.
 */
export async function withoutProjections<T>(work: () => Promise<T>): Promise<T> {
  // eslint-disable-next-line @typescript-eslint/unbound-method -- called with the collection as `this`
  const original = mongo.Collection.prototype.findOneAndUpdate;
  const spy = jest.spyOn(mongo.Collection.prototype, 'findOneAndUpdate').mockImplementation(function (
    this: mongo.Collection,
    filter,
    update,
    options,
  ) {
    const { projection: _stripped, ...rest } = (options ?? {}) as Record<string, unknown>;
    return (original as (...args: unknown[]) => Promise<unknown>).call(this, filter, update, rest);
  } as typeof original);
  try {
    return await work();
  } finally {
    spy.mockRestore();
  }
}
