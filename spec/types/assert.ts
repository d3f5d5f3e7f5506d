// Compile-time assertions for the type tests.

/** True if A and B are the same type (not merely assignable either way). */
export type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;

/** Compiles only if its type argument is `true`: `assert<Equal<X, Y>>()`. */
export function assert<_Condition extends true>(): void {}
