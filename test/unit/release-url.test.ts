// The release a configuration bundle announces (shared/configbundle/schema.ts): its address is shown
// as a link on the console's 设置 page, so only a web address is taken.
import { describe, expect, it } from 'vitest';
import { Release } from '../../shared/configbundle/schema.js';

describe('a release announced by a bundle', () => {
  it('takes an http(s) address', () => {
    expect(Release.safeParse({ version: '1.2.3', url: 'https://platform.example.cn/releases/1.2.3' }).success).toBe(true);
    expect(Release.safeParse({ version: '1.2.3' }).success).toBe(true);
  });

  it('refuses a javascript:, data: or file: address, naming url', () => {
    for (const url of ['javascript:alert(1)', 'data:text/html,<b>x</b>', 'file:///etc/passwd']) {
      const r = Release.safeParse({ version: '1.2.3', url });
      expect(r.success, url).toBe(false);
      expect(
        r.error?.issues.map((i) => i.path.join('.')),
        url,
      ).toEqual(['url']);
    }
  });
});
