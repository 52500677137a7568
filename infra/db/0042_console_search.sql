-- The console's searches (docs/console.md "Cases"): the 病例 and 报告卡 search forms post, and what was
-- typed (a name, an ID number, a patient id) is kept here, sealed with the field key like any personal
-- value (shared/pii), while the list's URL names it only by a random id — so it never lands in a URL,
-- the browser's history or a proxy's log. A search is read only with the session that made it, is
-- removed at sign-out, and any is removed 72 hours (the longest CONSOLE_SESSION_H) after it was made.
-- openGauss 5.0-safe: plain types, no ON CONFLICT.
CREATE TABLE console_search (
  search_id char(32) PRIMARY KEY,             -- random, 128 bits, hex: the URL's ?s=
  session_hash char(64) NOT NULL,             -- console_session.token_hash of the session that made it
  page varchar(20) NOT NULL,                  -- cases | cards
  query text NOT NULL,                        -- the form's fields as JSON, sealed (sm4:…)
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX console_search_session ON console_search (session_hash);
CREATE INDEX console_search_time ON console_search (created_at);
