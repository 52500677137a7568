// shared/pii: SM4-GCM field encryption under key ids, HMAC-SM3 lookups, the key file (docs/keys.md).
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { emrPatientInfo } from '../../schemas/patient.js';
import {
  devKeyFiles,
  devKeys,
  FieldKeyFile,
  keyIdOf,
  keysFromSecrets,
  keysOf,
  normalizeForHash,
  openRecord,
  parseFieldKeyFile,
  Pii,
  PiiKeyError,
  PiiValueError,
  sealRecord,
  type FieldKeyFile as KeyFile,
} from '../../shared/pii/index.js';
import { piiConcern } from '../../shared/pii/config.js';
import { parseConcern } from '../../shared/config/index.js';

const newKey = () => randomBytes(16).toString('base64');
const hashKey = Buffer.from(randomBytes(32).toString('base64url'));
const fileWith = (current: string, ids: string[]): KeyFile => ({ current, keys: ids.map((id) => ({ id, key: newKey() })) });
const piiOf = (f: KeyFile, h = hashKey) => new Pii(() => keysOf(f, h, 'test'));

const ID = '11010519491231002X';

describe('seal and open', () => {
  it('round-trips text under the current key id, a fresh nonce each time', () => {
    const p = piiOf(fileWith('k1', ['k1']));
    for (const v of [ID, '13800000000', '北京市东城区东华门街道某某胡同 1 号院', '']) {
      const s = p.seal(v);
      expect(s).toMatch(/^sm4:k1:[A-Za-z0-9_-]+$/);
      expect(s).not.toContain(v || '\u0000');
      expect(keyIdOf(s)).toBe('k1');
      expect(p.open(s)).toBe(v);
    }
    expect(p.seal(ID)).not.toBe(p.seal(ID));
  });

  it('leaves text that is not a protected form as it is (clear values from before migration 0032)', () => {
    const p = piiOf(fileWith('k1', ['k1']));
    expect(p.open(ID)).toBe(ID);
    expect(keyIdOf(ID)).toBeNull();
    expect(keyIdOf('sm4:k1:short')).toBeNull();
  });

  it('refuses a key id that is not in the key file, naming it', () => {
    const old = piiOf(fileWith('k1', ['k1']));
    const s = old.seal(ID);
    const other = piiOf(fileWith('k2', ['k2']));
    expect(() => other.open(s)).toThrow(PiiKeyError);
    expect(() => other.open(s)).toThrow(/key id k1/);
  });

  it('refuses a tampered value, a value moved under another key id, and another key under the same id', () => {
    const f = fileWith('k1', ['k1', 'k2']);
    const p = piiOf(f);
    const s = p.seal(ID);
    const body = s.slice('sm4:k1:'.length);
    const raw = Buffer.from(body, 'base64url');
    raw[raw.length - 20]! ^= 1;
    expect(() => p.open(`sm4:k1:${raw.toString('base64url')}`)).toThrow(PiiValueError);
    expect(() => p.open(`sm4:k2:${body}`)).toThrow(PiiValueError);
    expect(() => p.open(`sm4:k1:${body.slice(0, -4)}`)).toThrow(PiiValueError);
    const sameIdOtherKey = piiOf({ current: 'k1', keys: [{ id: 'k1', key: newKey() }] });
    expect(() => sameIdOtherKey.open(s)).toThrow(/does not verify/);
  });

  it('after a rotation seals under the new id and still opens the old one', () => {
    const f1 = fileWith('k1', ['k1']);
    const old = piiOf(f1).seal(ID);
    const f2: KeyFile = { current: 'k2', keys: [...f1.keys, { id: 'k2', key: newKey() }] };
    const p = piiOf(f2);
    expect(keyIdOf(p.seal(ID))).toBe('k2');
    expect(p.open(old)).toBe(ID);
  });
});

describe('the lookup hash', () => {
  it('is HMAC-SM3 of the normalised value, stable across a rotation of the field keys', () => {
    const a = piiOf(fileWith('k1', ['k1']));
    const b = piiOf(fileWith('k9', ['k9']));
    const h = a.hash('idno', ID);
    expect(h).toMatch(/^[0-9a-f]{64}$/);
    expect(b.hash('idno', ID)).toBe(h);
    expect(a.hash('idno', ID.toLowerCase())).toBe(h);
    expect(a.hash('phone', '138-0000 0000')).toBe(a.hash('phone', '13800000000'));
    expect(a.hash('idno', '11010519491231003X')).not.toBe(h);
  });

  it('depends on the hash key', () => {
    const f = fileWith('k1', ['k1']);
    expect(piiOf(f).hash('idno', ID)).not.toBe(piiOf(f, Buffer.from(randomBytes(32).toString('hex'))).hash('idno', ID));
  });
});

describe('lookup hashes', () => {
  it('hash a name NFKC-folded, trimmed and without inner whitespace: the same name however it was typed', () => {
    const p = piiOf(fileWith('k1', ['k1']));
    const h = p.hash('name', '张三');
    for (const typed of [' 张三 ', '张 三', '张\u3000三', '张\t三']) expect(p.hash('name', typed), JSON.stringify(typed)).toBe(h);
    expect(p.hash('name', 'Ｌｉ Ｍｉｎｇ')).toBe(p.hash('name', 'LiMing'));
    expect(normalizeForHash('name', ' 欧阳　娜娜 ')).toBe('欧阳娜娜');
    // Another name, and a name against another kind's hash of the same text: different.
    expect(p.hash('name', '张四')).not.toBe(h);
    expect(p.hash('name', 'ab')).not.toBe(p.hash('name', 'AB'));
  });
});

describe('records', () => {
  it('seals ID numbers, names, phones and addresses of the record and payload alike, hashes ID numbers, names and phones, leaves the rest', () => {
    const p = piiOf(fileWith('k1', ['k1']));
    const rec = {
      id: 'P1',
      orgCode: 'O1',
      patientName: '张三',
      idCard: ID,
      tel: '13800000000',
      currentAddrDetail: '某某路 1 号',
      contacts: '张大',
      workunit: '某单位',
      birthDate: '1949-12-31',
    };
    const s = sealRecord(emrPatientInfo, rec, { ...rec }, p);
    for (const k of ['idCard', 'tel', 'currentAddrDetail', 'patientName', 'contacts'] as const) {
      expect(keyIdOf(s.record[k])).toBe('k1');
      expect(s.payload[k]).toBe(s.record[k]);
    }
    // Birth dates and free text stay clear (docs/keys.md "Which fields").
    expect(s.record.workunit).toBe('某单位');
    expect(s.record.birthDate).toBe('1949-12-31');
    expect(s.hashes).toMatchObject({
      id_card_hmac: p.hash('idno', ID),
      tel_hmac: p.hash('phone', '13800000000'),
      contacts_tel_hmac: null,
      patient_name_hmac: p.hash('name', '张三'),
      contacts_hmac: p.hash('name', '张大'),
    });
    expect(s.hashes).not.toHaveProperty('current_addr_detail_hmac');
    expect(s.hashes).not.toHaveProperty('birth_date_hmac');
    expect(openRecord('emrPatientInfo', s.payload, p)).toEqual(rec);
  });
});

describe('the key files', () => {
  it('validates the field key file, naming the rule', () => {
    expect(() => parseFieldKeyFile('{')).toThrow(/pii-field-keys: not JSON/);
    expect(() => parseFieldKeyFile(JSON.stringify({ current: 'k2', keys: [{ id: 'k1', key: newKey() }] }))).toThrow(/current.*k2 is not among the keys/);
    expect(() => parseFieldKeyFile(JSON.stringify({ current: 'k1', keys: [{ id: 'k1', key: 'c2hvcnQ=' }] }))).toThrow(/16 bytes/);
    expect(() => parseFieldKeyFile(JSON.stringify({ current: 'K 1', keys: [{ id: 'K 1', key: newKey() }] }))).toThrow(/key id is a lowercase letter/);
    expect(() =>
      parseFieldKeyFile(
        JSON.stringify({
          current: 'k1',
          keys: [
            { id: 'k1', key: newKey() },
            { id: 'k1', key: newKey() },
          ],
        }),
      ),
    ).toThrow(/k1 appears twice/);
    expect(FieldKeyFile.safeParse(fileWith('k1', ['k1'])).success).toBe(true);
  });

  it('without key files: the development keys, refused with CDC_ENV=production; one file alone is an error naming the other', () => {
    const none = () => undefined;
    expect(keysFromSecrets(none, false).current).toBe(devKeys().current);
    expect(() => keysFromSecrets(none, true)).toThrow(/pii-field-keys and pii-hash-key are required when CDC_ENV=production/);
    const only = (n: string) => (n === 'pii-field-keys' ? JSON.stringify(fileWith('k1', ['k1'])) : undefined);
    expect(() => keysFromSecrets(only, false)).toThrow(/pii-hash-key is missing/);
    const short = (n: string) => (n === 'pii-field-keys' ? JSON.stringify(fileWith('k1', ['k1'])) : 'short');
    expect(() => keysFromSecrets(short, false)).toThrow(/pii-hash-key: at least 32 characters/);
  });

  it('the development keys written as files (fronts sharing a test database) seal and hash as a process without files does', () => {
    const files = devKeyFiles();
    const fromFiles = new Pii(() => keysFromSecrets((n) => files[n as keyof typeof files], true));
    const fallback = new Pii(() => keysFromSecrets(() => undefined, false));
    expect(fromFiles.open(fallback.seal(ID))).toBe(ID);
    expect(fallback.open(fromFiles.seal(ID))).toBe(ID);
    expect(fromFiles.hash('idno', ID)).toBe(fallback.hash('idno', ID));
  });

  it('the configuration refuses to start in production without them, and installs them otherwise', () => {
    expect(() => parseConcern(piiConcern, { CDC_ENV: 'production' }, () => undefined)).toThrow(/pii configuration invalid: .*required when CDC_ENV=production/);
    const f = fileWith('k7', ['k7']);
    const p = parseConcern(piiConcern, { CDC_ENV: 'production' }, (n) => (n === 'pii-field-keys' ? JSON.stringify(f) : hashKey.toString()));
    expect(p.currentKeyId).toBe('k7');
  });
});
