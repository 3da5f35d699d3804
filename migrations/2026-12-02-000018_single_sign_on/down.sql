DROP TABLE IF EXISTS sso_logins;
ALTER TABLE role_bindings DROP COLUMN IF EXISTS from_provider;
DROP TABLE IF EXISTS sso_group_roles;
ALTER TABLE account_settings
    DROP COLUMN IF EXISTS sso_break_glass,
    DROP COLUMN IF EXISTS sso_required,
    DROP COLUMN IF EXISTS sso_roles_only_from_provider,
    DROP COLUMN IF EXISTS sso_create_users;
