-- A clinician who arrives by single sign-on from the HIS (docs/card-form.md) is a console person too
-- (docs/console.md "Single sign-on"): the console user linked to the token's org and doctor, made
-- the first time as a clinician bound to that org, with no password. A session remembers how it was
-- opened; one opened by a HIS token is a clinician's whatever the user's role.
-- openGauss 5.0-safe: plain ADD COLUMN (no IF NOT EXISTS), no ON CONFLICT (a second user for the
-- same doctor is a unique violation, SQLSTATE 23505); NULL pairs do not collide in a unique index.
ALTER TABLE console_user ADD COLUMN his_org varchar(50);
ALTER TABLE console_user ADD COLUMN his_doctor varchar(80);
CREATE UNIQUE INDEX console_user_his ON console_user (his_org, his_doctor);
ALTER TABLE console_session ADD COLUMN via varchar(10) NOT NULL DEFAULT 'password';
