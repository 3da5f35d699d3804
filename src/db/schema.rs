// @generated-style: mirrors migrations/ exactly (diesel print-schema layout); edit both together.

diesel::table! {
    accounts (id) {
        id -> Int8,
        slug -> Text,
        name -> Text,
        time_zone -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    account_settings (account_id) {
        account_id -> Int8,
        release_level -> Text,
        webhook_allow_list -> Array<Text>,
        reminder_interval_minutes -> Int4,
        chat_webhook_url -> Nullable<Text>,
        updated_at -> Timestamptz,
        sso_create_users -> Bool,
        sso_roles_only_from_provider -> Bool,
        sso_required -> Bool,
        sso_break_glass -> Array<Text>,
    }
}

diesel::table! {
    app_secrets (name) {
        name -> Text,
        value -> Bytea,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    organizations (id) {
        id -> Int8,
        account_id -> Int8,
        slug -> Text,
        name -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    users (id) {
        id -> Int8,
        account_id -> Int8,
        email -> Text,
        name -> Text,
        password_hash -> Text,
        time_zone -> Nullable<Text>,
        disabled_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        sso_issuer -> Nullable<Text>,
        sso_subject -> Nullable<Text>,
    }
}

diesel::table! {
    groups (id) {
        id -> Int8,
        account_id -> Int8,
        name -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    group_members (group_id, user_id) {
        account_id -> Int8,
        group_id -> Int8,
        user_id -> Int8,
    }
}

diesel::table! {
    role_bindings (id) {
        id -> Int8,
        account_id -> Int8,
        user_id -> Int8,
        role -> Text,
        org_id -> Nullable<Int8>,
        created_at -> Timestamptz,
        from_provider -> Bool,
    }
}

diesel::table! {
    sessions (token_hash) {
        token_hash -> Text,
        account_id -> Int8,
        user_id -> Int8,
        csrf_token -> Text,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
        revoked_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    activity_comments (id) {
        id -> Int8,
        account_id -> Int8,
        release_id -> Int8,
        phase_key -> Text,
        activity_key -> Text,
        author -> Text,
        body -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    sso_group_roles (id) {
        id -> Int8,
        account_id -> Int8,
        provider_group -> Text,
        role -> Text,
        org_id -> Nullable<Int8>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    sso_logins (state_hash) {
        state_hash -> Text,
        nonce -> Text,
        pkce_verifier -> Text,
        next -> Text,
        created_at -> Timestamptz,
        browser_hash -> Nullable<Text>,
        client -> Nullable<Text>,
    }
}

diesel::table! {
    api_tokens (id) {
        id -> Int8,
        account_id -> Int8,
        user_id -> Int8,
        token_hash -> Text,
        name -> Text,
        created_at -> Timestamptz,
        revoked_at -> Nullable<Timestamptz>,
        expires_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    login_failures (id) {
        id -> Int8,
        email -> Text,
        client_addr -> Text,
        at -> Timestamptz,
    }
}

diesel::table! {
    environments (id) {
        id -> Int8,
        account_id -> Int8,
        name -> Text,
        position -> Int4,
        production -> Bool,
        created_at -> Timestamptz,
        deploy_lock -> Text,
    }
}

diesel::table! {
    deploy_locks (id) {
        id -> Int8,
        account_id -> Int8,
        environment -> Text,
        service -> Text,
        release_id -> Int8,
        phase_key -> Text,
        held -> Bool,
        hotfix -> Bool,
        since -> Timestamptz,
    }
}

diesel::table! {
    services (id) {
        id -> Int8,
        account_id -> Int8,
        name -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    notifications (id) {
        id -> Int8,
        account_id -> Int8,
        user_id -> Int8,
        kind -> Text,
        subject -> Text,
        body -> Text,
        link -> Nullable<Text>,
        created_at -> Timestamptz,
        read_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    notification_outbox (id) {
        id -> Int8,
        account_id -> Int8,
        user_id -> Nullable<Int8>,
        channel -> Text,
        kind -> Text,
        payload -> Jsonb,
        created_at -> Timestamptz,
        attempts -> Int4,
        next_attempt_at -> Timestamptz,
        delivered_at -> Nullable<Timestamptz>,
        last_error -> Nullable<Text>,
    }
}

diesel::table! {
    audit_chain_heads (chain) {
        chain -> Text,
        account_id -> Nullable<Int8>,
        last_seq -> Int8,
        last_hash -> Text,
    }
}

diesel::table! {
    audit_events (id) {
        id -> Int8,
        chain -> Text,
        seq -> Int8,
        account_id -> Nullable<Int8>,
        release_id -> Nullable<Int8>,
        actor -> Text,
        action -> Text,
        subject -> Text,
        reason -> Nullable<Text>,
        details -> Jsonb,
        at -> Timestamptz,
        prev_hash -> Text,
        hash -> Text,
    }
}

diesel::table! {
    processes (id) {
        id -> Int8,
        account_id -> Int8,
        org_id -> Nullable<Int8>,
        name -> Text,
        latest_version -> Int4,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        archived_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    process_versions (process_id, version) {
        process_id -> Int8,
        version -> Int4,
        account_id -> Int8,
        definition -> Jsonb,
        created_at -> Timestamptz,
        created_by -> Text,
    }
}

diesel::table! {
    process_working_copies (process_id, user_id) {
        process_id -> Int8,
        user_id -> Int8,
        account_id -> Int8,
        base_version -> Int4,
        definition -> Jsonb,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    input_sets (id) {
        id -> Int8,
        account_id -> Int8,
        process_id -> Int8,
        name -> Text,
        input_values -> Jsonb,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    releases (id) {
        id -> Int8,
        account_id -> Int8,
        org_id -> Nullable<Int8>,
        name -> Text,
        release_type -> Text,
        process_id -> Int8,
        process_version -> Int4,
        inputs -> Jsonb,
        variables -> Jsonb,
        schedule_start -> Nullable<Timestamptz>,
        schedule_end -> Nullable<Timestamptz>,
        time_zone -> Text,
        owner_id -> Nullable<Int8>,
        stakeholders -> Array<Text>,
        environments -> Array<Text>,
        services -> Array<Text>,
        state -> Text,
        status -> Text,
        status_reason -> Nullable<Text>,
        lock_version -> Int4,
        created_by -> Nullable<Int8>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        activated_at -> Nullable<Timestamptz>,
        started_at -> Nullable<Timestamptz>,
        finished_at -> Nullable<Timestamptz>,
        archived_at -> Nullable<Timestamptz>,
        next_eval_at -> Nullable<Timestamptz>,
        failing -> Bool,
        artifacts -> Jsonb,
        release_group_id -> Nullable<Int8>,
        occurrence -> Nullable<Timestamptz>,
        hold -> Nullable<Text>,
        engine_failures -> Int4,
        refused_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    freeze_overrides (release_id) {
        release_id -> Int8,
        reason -> Text,
        granted_by -> Text,
        granted_at -> Timestamptz,
    }
}

diesel::table! {
    freeze_windows (id) {
        id -> Int8,
        account_id -> Int8,
        reason -> Text,
        environments -> Array<Text>,
        time_zone -> Text,
        starts_at -> Nullable<Timestamptz>,
        ends_at -> Nullable<Timestamptz>,
        rrule -> Nullable<Text>,
        dtstart -> Nullable<Timestamp>,
        duration_minutes -> Nullable<Int4>,
        created_at -> Timestamptz,
        org_id -> Nullable<Int8>,
    }
}

diesel::table! {
    release_groups (id) {
        id -> Int8,
        account_id -> Int8,
        org_id -> Nullable<Int8>,
        name -> Text,
        process_id -> Int8,
        input_set_id -> Nullable<Int8>,
        rrule -> Text,
        dtstart -> Timestamp,
        time_zone -> Text,
        duration_minutes -> Int4,
        name_template -> Text,
        horizon_days -> Int4,
        paused -> Bool,
        require_previous_finished -> Bool,
        owner_id -> Nullable<Int8>,
        created_at -> Timestamptz,
        release_type -> Text,
        stakeholders -> Array<Text>,
    }
}

diesel::table! {
    calendar_feeds (token_hash) {
        token_hash -> Text,
        account_id -> Int8,
        user_id -> Int8,
        created_at -> Timestamptz,
        revoked_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    release_group_skips (group_id, occurrence) {
        group_id -> Int8,
        occurrence -> Timestamptz,
    }
}

diesel::table! {
    workers (id) {
        id -> Text,
        started_at -> Timestamptz,
        heartbeat_at -> Timestamptz,
    }
}

diesel::table! {
    webhook_attempts (id) {
        id -> Int8,
        account_id -> Int8,
        release_id -> Int8,
        phase_key -> Text,
        activity_key -> Text,
        attempt -> Int4,
        idempotency_key -> Text,
        state -> Text,
        due_at -> Timestamptz,
        lease_owner -> Nullable<Text>,
        lease_until -> Nullable<Timestamptz>,
        request -> Nullable<Jsonb>,
        response_status -> Nullable<Int4>,
        response_body -> Nullable<Text>,
        error -> Nullable<Text>,
        callback_token_hash -> Nullable<Text>,
        callback_used_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        sent_at -> Nullable<Timestamptz>,
        finished_at -> Nullable<Timestamptz>,
        duration_ms -> Nullable<Int4>,
    }
}

diesel::table! {
    deployments (id) {
        id -> Int8,
        account_id -> Int8,
        release_id -> Nullable<Int8>,
        phase_key -> Text,
        activity_key -> Text,
        service -> Text,
        version -> Text,
        environment -> Text,
        deployed_at -> Timestamptz,
        release_name -> Text,
        org_id -> Nullable<Int8>,
    }
}

diesel::table! {
    audit_verifications (id) {
        id -> Int8,
        account_id -> Int8,
        verified_at -> Timestamptz,
        verified_by -> Text,
        chains -> Int8,
        events -> Int8,
        broken -> Nullable<Text>,
    }
}

diesel::table! {
    release_links (release_id, kind, target_id) {
        account_id -> Int8,
        release_id -> Int8,
        kind -> Text,
        target_id -> Int8,
    }
}

diesel::table! {
    release_phases (release_id, key) {
        release_id -> Int8,
        key -> Text,
        account_id -> Int8,
        position -> Int4,
        name -> Text,
        owner -> Text,
        depends_on -> Array<Text>,
        rollback -> Bool,
        status -> Text,
        started_at -> Nullable<Timestamptz>,
        finished_at -> Nullable<Timestamptz>,
        wake_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    release_activities (release_id, phase_key, key) {
        release_id -> Int8,
        phase_key -> Text,
        key -> Text,
        account_id -> Int8,
        position -> Int4,
        name -> Text,
        kind -> Text,
        owner -> Text,
        depends_on -> Array<Text>,
        critical -> Bool,
        status -> Text,
        attempts -> Int4,
        outputs -> Jsonb,
        started_at -> Nullable<Timestamptz>,
        finished_at -> Nullable<Timestamptz>,
        on_failure -> Text,
        wake_at -> Nullable<Timestamptz>,
        status_reason -> Nullable<Text>,
        eligible -> Array<Int8>,
        needed -> Int4,
        last_actor -> Nullable<Text>,
        note -> Nullable<Text>,
        run_first_attempt -> Int4,
        last_reminded_at -> Nullable<Timestamptz>,
        escalation_level -> Int4,
        deadline -> Nullable<Timestamptz>,
        hold -> Nullable<Text>,
        fan_of -> Nullable<Text>,
        item -> Nullable<Text>,
        item_value -> Nullable<Jsonb>,
        fanned -> Bool,
        waiting_for -> Nullable<Jsonb>,
    }
}

diesel::table! {
    signoff_tokens (token_hash) {
        token_hash -> Text,
        account_id -> Int8,
        release_id -> Int8,
        phase_key -> Text,
        activity_key -> Text,
        round -> Int4,
        user_id -> Int8,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
        used_at -> Nullable<Timestamptz>,
        voided_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    delegations (id) {
        id -> Int8,
        account_id -> Int8,
        user_id -> Int8,
        delegate_id -> Int8,
        starts_at -> Timestamptz,
        ends_at -> Timestamptz,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    status_links (token_hash) {
        token_hash -> Text,
        account_id -> Int8,
        release_id -> Int8,
        created_by -> Nullable<Int8>,
        created_at -> Timestamptz,
        revoked_at -> Nullable<Timestamptz>,
        expires_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    user_mutes (user_id, kind) {
        user_id -> Int8,
        kind -> Text,
    }
}

diesel::table! {
    approval_votes (release_id, phase_key, activity_key, round, user_id) {
        account_id -> Int8,
        release_id -> Int8,
        phase_key -> Text,
        activity_key -> Text,
        round -> Int4,
        user_id -> Int8,
        cast_by -> Int8,
        decision -> Text,
        comment -> Nullable<Text>,
        at -> Timestamptz,
    }
}

diesel::table! {
    sweep_runs (name) {
        name -> Text,
        last_run_at -> Timestamptz,
    }
}

diesel::joinable!(account_settings -> accounts (account_id));
diesel::joinable!(organizations -> accounts (account_id));
diesel::joinable!(users -> accounts (account_id));
diesel::joinable!(groups -> accounts (account_id));
diesel::joinable!(group_members -> groups (group_id));
diesel::joinable!(group_members -> users (user_id));
diesel::joinable!(role_bindings -> users (user_id));
diesel::joinable!(role_bindings -> organizations (org_id));
diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(api_tokens -> users (user_id));
diesel::joinable!(environments -> accounts (account_id));
diesel::joinable!(services -> accounts (account_id));
diesel::joinable!(processes -> organizations (org_id));
diesel::joinable!(process_versions -> processes (process_id));
diesel::joinable!(input_sets -> processes (process_id));
diesel::joinable!(releases -> processes (process_id));
diesel::joinable!(releases -> organizations (org_id));
diesel::joinable!(release_phases -> releases (release_id));

diesel::allow_tables_to_appear_in_same_query!(
    deploy_locks,
    accounts,
    account_settings,
    app_secrets,
    organizations,
    users,
    groups,
    group_members,
    role_bindings,
    sessions,
    api_tokens,
    login_failures,
    environments,
    services,
    notifications,
    notification_outbox,
    audit_chain_heads,
    audit_events,
    processes,
    process_versions,
    process_working_copies,
    input_sets,
    releases,
    release_links,
    release_phases,
    release_activities,
    sweep_runs,
    approval_votes,
    workers,
    webhook_attempts,
    deployments,
    signoff_tokens,
    delegations,
    status_links,
    user_mutes,
    release_groups,
    release_group_skips,
    calendar_feeds,
    freeze_windows,
    freeze_overrides,
    audit_verifications,
    activity_comments,
    sso_group_roles,
    sso_logins,
);
