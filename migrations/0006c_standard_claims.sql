-- The standard claims of OpenID Connect Core §5.1 (issue 18): one column per claim, named as the
-- claim. Columns rather than one JSON column because an admin PATCH writes only the members it
-- was sent, one column each (src/edge/store/assign.rs), so two concurrent PATCHes of different
-- claims never undo each other; with one JSON column each write would rewrite every claim.
-- Every read of a user already takes `users.*`, so the claims come with it, no parsing. The
-- values are checked by the admin API (src/protocol/claim_formats.rs) before they are written.

ALTER TABLE users ADD COLUMN given_name TEXT;
ALTER TABLE users ADD COLUMN family_name TEXT;
ALTER TABLE users ADD COLUMN middle_name TEXT;
ALTER TABLE users ADD COLUMN nickname TEXT;
ALTER TABLE users ADD COLUMN profile TEXT;               -- absolute http(s) URL
ALTER TABLE users ADD COLUMN website TEXT;               -- absolute http(s) URL
ALTER TABLE users ADD COLUMN gender TEXT;
ALTER TABLE users ADD COLUMN birthdate TEXT;             -- YYYY-MM-DD, 0000-MM-DD or YYYY
ALTER TABLE users ADD COLUMN zoneinfo TEXT;              -- IANA time zone name
ALTER TABLE users ADD COLUMN locale TEXT;                -- BCP 47 language tag
ALTER TABLE users ADD COLUMN phone_number TEXT;          -- E.164: + and 8-15 digits
ALTER TABLE users ADD COLUMN phone_number_verified INTEGER NOT NULL DEFAULT 0;
-- The §5.1.1 address is one claim, replaced whole: a JSON object with any of formatted,
-- street_address, locality, region, postal_code, country (strings).
ALTER TABLE users ADD COLUMN address TEXT;
