DROP TABLE IF EXISTS audit_events, audit_chain_heads, notification_outbox, notifications, services,
    environments, login_failures, api_tokens, sessions, role_bindings, group_members, groups, users,
    organizations, account_settings, accounts, app_secrets CASCADE;
DROP FUNCTION IF EXISTS audit_events_append_only();
