// What test/setup/global.ts hands to every test file through `inject()`.
import 'vitest';

declare module 'vitest' {
  export interface ProvidedContext {
    /** postgresql:// URL of the migrated test database (TEST_DATABASE_URL or the private server). */
    databaseUrl: string;
  }
}
