/** ByteBoundedCache (src/remote/byte-bounded-cache.ts): the bound on what fetch keeps of inflated objects. */
import t from 'tap';
import { ByteBoundedCache } from '../src/remote/byte-bounded-cache';

t.test('forgets the least recently used entries once the sizes exceed the budget', async (t) => {
  const cache = new ByteBoundedCache<string, string>(10);
  cache.set('a', 'A', 4);
  cache.set('b', 'B', 4);
  t.equal(cache.get('a'), 'A', 'reading a makes b the least recently used');
  cache.set('c', 'C', 4);
  t.equal(cache.get('b'), undefined, 'b went first');
  t.equal(cache.get('a'), 'A');
  t.equal(cache.get('c'), 'C');
});

t.test('replacing an entry counts its new size only', async (t) => {
  const cache = new ByteBoundedCache<string, string>(10);
  cache.set('a', 'A1', 6);
  cache.set('a', 'A2', 2);
  cache.set('b', 'B', 8);
  t.equal(cache.get('a'), 'A2', 'a (2 bytes) and b (8) fit in 10');
  t.equal(cache.get('b'), 'B');
});

t.test('an entry larger than the budget is not kept, and does not leave an older value behind', async (t) => {
  const cache = new ByteBoundedCache<string, string>(10);
  cache.set('small', 'S', 3);
  cache.set('a', 'old', 3);
  cache.set('a', 'huge', 11);
  t.equal(cache.get('a'), undefined);
  t.equal(cache.get('small'), 'S', 'what was there stays');
  cache.set('b', 'B', 7);
  t.equal(cache.get('small'), 'S', 'the dropped entry no longer counts against the budget');
});
