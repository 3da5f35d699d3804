//! Single sign-on rules (DESIGN §10): roles from the provider's groups through the account's
//! mapping, re-applied at each log-in, and who may still use a password.

use super::policy::Binding;

/// One line of the account's mapping: a provider group gives a role (with its org).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRole {
    pub group: String,
    pub binding: Binding,
}

/// The bindings these groups give through the mapping, each once, in mapping order.
pub fn mapped(mapping: &[GroupRole], groups: &[String]) -> Vec<Binding> {
    let mut out: Vec<Binding> = Vec::new();
    for m in mapping.iter().filter(|m| groups.iter().any(|g| g == &m.group)) {
        if !out.contains(&m.binding) {
            out.push(m.binding);
        }
    }
    out
}

/// What a log-in changes: the bindings to add and to remove. `current` flags the bindings the
/// mapping gave earlier; those go when their group is gone. Bindings given by hand stay, unless
/// the account takes roles only from the provider.
pub fn reconcile(current: &[(Binding, bool)], wanted: &[Binding], only_from_provider: bool) -> (Vec<Binding>, Vec<Binding>) {
    let add = wanted.iter().filter(|w| !current.iter().any(|(b, _)| b == *w)).copied().collect();
    let remove = current
        .iter()
        .filter(|(b, from_provider)| (*from_provider || only_from_provider) && !wanted.contains(b))
        .map(|(b, _)| *b)
        .collect();
    (add, remove)
}

/// What the mapping may not take away (DESIGN §10): a break-glass admin keeps every role (they
/// are the way in when the provider fails), and the account's last admin keeps the admin role.
pub fn protect(remove: Vec<Binding>, is_break_glass: bool, is_last_admin: bool) -> Vec<Binding> {
    if is_break_glass {
        return Vec::new();
    }
    remove.into_iter().filter(|b| !(is_last_admin && b.role == super::policy::Role::AccountAdmin && b.org.is_none())).collect()
}

/// Whether a password log-in is allowed: always, unless the account requires SSO and the
/// person is not one of its named break-glass admins.
pub fn password_allowed(sso_required: bool, break_glass: &[String], email: &str) -> bool {
    !sso_required || break_glass.iter().any(|b| b.trim().eq_ignore_ascii_case(email.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::policy::Role;

    fn b(role: Role, org: Option<i64>) -> Binding {
        Binding { role, org }
    }

    #[test]
    fn groups_give_roles_once_and_a_removed_group_takes_its_role_away() {
        let mapping = vec![
            GroupRole { group: "release-managers".into(), binding: b(Role::AccountReleaseManager, None) },
            GroupRole { group: "payments".into(), binding: b(Role::OrgReleaseManager, Some(7)) },
            GroupRole { group: "everyone".into(), binding: b(Role::Viewer, None) },
            GroupRole { group: "staff".into(), binding: b(Role::Viewer, None) },
        ];
        let wanted = mapped(&mapping, &["everyone".into(), "staff".into(), "payments".into()]);
        assert_eq!(wanted, [b(Role::OrgReleaseManager, Some(7)), b(Role::Viewer, None)]);
        // Earlier: the provider gave release manager; by hand: admin.
        let current = [(b(Role::AccountReleaseManager, None), true), (b(Role::AccountAdmin, None), false), (b(Role::Viewer, None), true)];
        let (add, remove) = reconcile(&current, &wanted, false);
        assert_eq!(add, [b(Role::OrgReleaseManager, Some(7))]);
        assert_eq!(remove, [b(Role::AccountReleaseManager, None)], "the hand-given admin stays");
        let (_, remove) = reconcile(&current, &wanted, true);
        assert_eq!(remove, [b(Role::AccountReleaseManager, None), b(Role::AccountAdmin, None)], "roles only from the provider");
    }

    #[test]
    fn the_mapping_never_removes_a_break_glass_admin_s_roles_nor_the_last_admin() {
        let remove = vec![b(Role::AccountAdmin, None), b(Role::Viewer, None)];
        assert_eq!(protect(remove.clone(), true, false), []);
        assert_eq!(protect(remove.clone(), false, true), [b(Role::Viewer, None)]);
        assert_eq!(protect(remove.clone(), false, false), remove);
    }

    #[test]
    fn only_break_glass_admins_use_a_password_when_sso_is_required() {
        let glass = vec!["Root@Acme.example.com".to_string()];
        assert!(password_allowed(false, &[], "ana@acme.example.com"));
        assert!(!password_allowed(true, &glass, "ana@acme.example.com"));
        assert!(password_allowed(true, &glass, "root@acme.example.com"));
    }
}
