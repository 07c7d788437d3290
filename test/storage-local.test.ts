import t from 'tap';
import { LocalStorage } from '../src/storage/local-storage';
import { storageContract } from './storage-contract';

storageContract(t, async (t) => new LocalStorage(t.testdir()));
