/**
 * `target` with some of its methods replaced, for unit tests that hold back, record or fail one
 * call of a real store or key provider: every other property is the target's own, its methods
 * bound to it (LocalStorage and LocalKeyProvider keep state in private fields).
 */
export function overriding<T extends object>(target: T, overrides: Partial<T>): T {
  return new Proxy(target, {
    get(t, prop, receiver) {
      if (Object.prototype.hasOwnProperty.call(overrides, prop)) return overrides[prop as keyof T];
      const value: unknown = Reflect.get(t, prop, receiver);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(t) : value;
    },
  });
}
