-- An org release manager's freeze holds only that org's releases (DESIGN §1, §2).
ALTER TABLE freeze_windows ADD COLUMN org_id BIGINT REFERENCES organizations(id) ON DELETE CASCADE;
