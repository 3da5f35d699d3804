//! Who may do what (DESIGN §1): one action enum, role bindings per scope, rights as a union.

use std::fmt;

pub type OrgId = i64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    AccountAdmin,
    AccountReleaseManager,
    OrgReleaseManager,
    Viewer,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::AccountAdmin, Role::AccountReleaseManager, Role::OrgReleaseManager, Role::Viewer];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::AccountAdmin => "account_admin",
            Role::AccountReleaseManager => "account_release_manager",
            Role::OrgReleaseManager => "org_release_manager",
            Role::Viewer => "viewer",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// Whether a binding of this role needs, may have, or must not have an org.
    pub fn org_rule(self) -> OrgRule {
        match self {
            Role::AccountAdmin | Role::AccountReleaseManager => OrgRule::Forbidden,
            Role::OrgReleaseManager => OrgRule::Required,
            Role::Viewer => OrgRule::Optional,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrgRule {
    Required,
    Optional,
    Forbidden,
}

/// One role granted to a user, account-wide (`org: None`) or for one org.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Binding {
    pub role: Role,
    pub org: Option<OrgId>,
}

/// What an action is about: the account itself, or one org inside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    Account,
    Org(OrgId),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    ViewCalendar,
    ViewRelease,
    ViewProcess,
    CreateRelease,
    EditDraft,
    Activate,
    RunNow,
    Abort,
    Restart,
    DeleteRelease,
    DecideFailure,
    ActOnActivity,
    ManageProcess,
    ManageReleaseGroup,
    ManageFreeze,
    OverrideFreeze,
    ManageUsers,
    ManageCatalog,
    ManageSettings,
    ViewAudit,
    ExportAudit,
}

impl Action {
    pub const ALL: [Action; 21] = [
        Action::ViewCalendar,
        Action::ViewRelease,
        Action::ViewProcess,
        Action::CreateRelease,
        Action::EditDraft,
        Action::Activate,
        Action::RunNow,
        Action::Abort,
        Action::Restart,
        Action::DeleteRelease,
        Action::DecideFailure,
        Action::ActOnActivity,
        Action::ManageProcess,
        Action::ManageReleaseGroup,
        Action::ManageFreeze,
        Action::OverrideFreeze,
        Action::ManageUsers,
        Action::ManageCatalog,
        Action::ManageSettings,
        Action::ViewAudit,
        Action::ExportAudit,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::ViewCalendar => "view_calendar",
            Action::ViewRelease => "view_release",
            Action::ViewProcess => "view_process",
            Action::CreateRelease => "create_release",
            Action::EditDraft => "edit_draft",
            Action::Activate => "activate",
            Action::RunNow => "run_now",
            Action::Abort => "abort",
            Action::Restart => "restart",
            Action::DeleteRelease => "delete_release",
            Action::DecideFailure => "decide_failure",
            Action::ActOnActivity => "act_on_activity",
            Action::ManageProcess => "manage_process",
            Action::ManageReleaseGroup => "manage_release_group",
            Action::ManageFreeze => "manage_freeze",
            Action::OverrideFreeze => "override_freeze",
            Action::ManageUsers => "manage_users",
            Action::ManageCatalog => "manage_catalog",
            Action::ManageSettings => "manage_settings",
            Action::ViewAudit => "view_audit",
            Action::ExportAudit => "export_audit",
        }
    }

    /// The words used in a refusal: "you may not <describe>".
    pub fn describe(self) -> &'static str {
        match self {
            Action::ViewCalendar => "view the release calendar",
            Action::ViewRelease => "view releases",
            Action::ViewProcess => "view processes",
            Action::CreateRelease => "create releases",
            Action::EditDraft => "edit draft releases",
            Action::Activate => "activate releases",
            Action::RunNow => "run releases now",
            Action::Abort => "abort releases",
            Action::Restart => "restart releases",
            Action::DeleteRelease => "delete releases",
            Action::DecideFailure => "decide on failed activities",
            Action::ActOnActivity => "act on activities",
            Action::ManageProcess => "manage processes",
            Action::ManageReleaseGroup => "manage release groups",
            Action::ManageFreeze => "manage freeze windows",
            Action::OverrideFreeze => "override freeze windows",
            Action::ManageUsers => "manage users",
            Action::ManageCatalog => "manage organizations, groups, environments and services",
            Action::ManageSettings => "change account settings",
            Action::ViewAudit => "view the audit trail",
            Action::ExportAudit => "export the audit trail",
        }
    }

    fn is_view(self) -> bool {
        matches!(self, Action::ViewCalendar | Action::ViewRelease | Action::ViewProcess)
    }

    /// Release and process work a release manager does within their level.
    fn is_release_management(self) -> bool {
        matches!(
            self,
            Action::CreateRelease
                | Action::EditDraft
                | Action::Activate
                | Action::RunNow
                | Action::Abort
                | Action::Restart
                | Action::DeleteRelease
                | Action::DecideFailure
                | Action::ActOnActivity
                | Action::ManageProcess
                | Action::ManageReleaseGroup
        )
    }
}

/// Whether one binding grants `action` on `scope`. This is the whole matrix of DESIGN §1.
pub fn binding_allows(binding: Binding, action: Action, scope: Scope) -> bool {
    match binding.role {
        Role::AccountAdmin => true,
        Role::AccountReleaseManager => match action {
            Action::ManageUsers | Action::ManageCatalog | Action::ManageSettings => false,
            // Account release managers view everything in the account, and run the account level.
            a if a.is_view() || matches!(a, Action::ViewAudit | Action::ExportAudit) => true,
            Action::ManageFreeze | Action::OverrideFreeze => true,
            a if a.is_release_management() => scope == Scope::Account,
            _ => false,
        },
        Role::OrgReleaseManager => {
            let own = binding.org.is_some_and(|org| scope == Scope::Org(org));
            match action {
                a if a.is_view() => own || scope == Scope::Account,
                a if a.is_release_management() => own,
                // An org's freezes hold only that org's releases (DESIGN §1); overrides stay with
                // account release managers (DESIGN §2).
                Action::ViewAudit | Action::ManageFreeze => own,
                _ => false,
            }
        }
        Role::Viewer => {
            action.is_view()
                && match binding.org {
                    None => true,
                    Some(org) => scope == Scope::Account || scope == Scope::Org(org),
                }
        }
    }
}

/// Which releases' rows a listing may show for one action: account-level ones, every org's,
/// or the named orgs'. Reports and the audit pages filter in SQL with it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Visibility {
    pub account_level: bool,
    pub all_orgs: bool,
    pub orgs: Vec<OrgId>,
}

impl Visibility {
    pub fn of(bindings: &[Binding], action: Action) -> Visibility {
        let mut v = Visibility::default();
        for b in bindings {
            v.account_level |= binding_allows(*b, action, Scope::Account);
            match b.org {
                // A binding without an org answers the same for every org.
                None => v.all_orgs |= binding_allows(*b, action, Scope::Org(OrgId::MIN)),
                Some(org) if binding_allows(*b, action, Scope::Org(org)) && !v.orgs.contains(&org) => v.orgs.push(org),
                Some(_) => {}
            }
        }
        v
    }

    pub fn sees(&self, org: Option<OrgId>) -> bool {
        match org {
            None => self.account_level,
            Some(o) => self.all_orgs || self.orgs.contains(&o),
        }
    }

    pub fn nothing(&self) -> bool {
        !self.account_level && !self.all_orgs && self.orgs.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refusal(pub String);

/// Rights are the union of every binding; the refusal says why in words.
pub fn require(bindings: &[Binding], action: Action, scope: Scope) -> Result<(), Refusal> {
    if bindings.iter().any(|b| binding_allows(*b, action, scope)) {
        return Ok(());
    }
    let where_ = match scope {
        Scope::Account => "at account level".to_string(),
        Scope::Org(_) => "in this organization".to_string(),
    };
    let held = if bindings.is_empty() {
        "you hold no role".to_string()
    } else {
        let mut names: Vec<&str> = bindings.iter().map(|b| b.role.as_str()).collect();
        names.dedup();
        format!("your roles ({}) do not allow it", names.join(", "))
    };
    Err(Refusal(format!("You may not {} {where_}: {held}.", action.describe())))
}

pub fn allows(bindings: &[Binding], action: Action, scope: Scope) -> bool {
    require(bindings, action, scope).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use Action::*;

    const ORG: OrgId = 7;
    const OTHER_ORG: OrgId = 8;

    /// Expected answer for every role × action, on the account scope, the role's own org, and another org.
    /// Columns: (account, own org, other org). For account-wide roles "own org" is simply org 7.
    fn expected(role: Role, action: Action) -> (bool, bool, bool) {
        let all = (true, true, true);
        let none = (false, false, false);
        match role {
            Role::AccountAdmin => all,
            Role::AccountReleaseManager => match action {
                ViewCalendar | ViewRelease | ViewProcess | ViewAudit | ExportAudit | ManageFreeze | OverrideFreeze => all,
                CreateRelease | EditDraft | Activate | RunNow | Abort | Restart | DeleteRelease | DecideFailure | ActOnActivity
                | ManageProcess | ManageReleaseGroup => (true, false, false),
                ManageUsers | ManageCatalog | ManageSettings => none,
            },
            Role::OrgReleaseManager => match action {
                ViewCalendar | ViewRelease | ViewProcess => (true, true, false),
                CreateRelease | EditDraft | Activate | RunNow | Abort | Restart | DeleteRelease | DecideFailure | ActOnActivity
                | ManageProcess | ManageReleaseGroup | ViewAudit | ManageFreeze => (false, true, false),
                OverrideFreeze | ManageUsers | ManageCatalog | ManageSettings | ExportAudit => none,
            },
            Role::Viewer => match action {
                ViewCalendar | ViewRelease | ViewProcess => (true, true, false),
                _ => none,
            },
        }
    }

    #[test]
    fn every_role_times_every_action() {
        let mut checked = 0;
        for role in Role::ALL {
            let binding = Binding { role, org: (role.org_rule() != OrgRule::Forbidden).then_some(ORG) };
            for action in Action::ALL {
                let (account, own, other) = expected(role, action);
                assert_eq!(binding_allows(binding, action, Scope::Account), account, "{role} {action:?} account");
                assert_eq!(binding_allows(binding, action, Scope::Org(ORG)), own, "{role} {action:?} own org");
                assert_eq!(binding_allows(binding, action, Scope::Org(OTHER_ORG)), other, "{role} {action:?} other org");
                checked += 1;
            }
        }
        assert_eq!(checked, 4 * 21);
    }

    #[test]
    fn account_wide_viewer_sees_every_org_but_changes_nothing() {
        let viewer = [Binding { role: Role::Viewer, org: None }];
        assert!(allows(&viewer, ViewRelease, Scope::Org(OTHER_ORG)));
        for action in Action::ALL.into_iter().filter(|a| !a.is_view()) {
            assert!(!allows(&viewer, action, Scope::Account), "{action:?}");
        }
    }

    #[test]
    fn bindings_combine_as_a_union() {
        let both = [Binding { role: Role::Viewer, org: None }, Binding { role: Role::OrgReleaseManager, org: Some(ORG) }];
        assert!(allows(&both, CreateRelease, Scope::Org(ORG)));
        assert!(allows(&both, ViewRelease, Scope::Org(OTHER_ORG)));
        assert!(!allows(&both, CreateRelease, Scope::Org(OTHER_ORG)));
        assert!(!allows(&both, ManageUsers, Scope::Account));
    }

    #[test]
    fn refusals_say_why() {
        let err = require(&[Binding { role: Role::Viewer, org: None }], ManageUsers, Scope::Account).unwrap_err();
        assert_eq!(err.0, "You may not manage users at account level: your roles (viewer) do not allow it.");
        let err = require(&[], ViewCalendar, Scope::Account).unwrap_err();
        assert!(err.0.contains("you hold no role"));
    }

    #[test]
    fn visibility_follows_the_matrix() {
        let org_rm = [Binding { role: Role::OrgReleaseManager, org: Some(ORG) }];
        let audit = Visibility::of(&org_rm, ViewAudit);
        assert!(audit.sees(Some(ORG)) && !audit.sees(Some(OTHER_ORG)) && !audit.sees(None));
        let releases = Visibility::of(&org_rm, ViewRelease);
        assert!(releases.sees(None) && releases.sees(Some(ORG)) && !releases.sees(Some(OTHER_ORG)));
        let viewer = Visibility::of(&[Binding { role: Role::Viewer, org: None }], ViewRelease);
        assert!(viewer.sees(Some(OTHER_ORG)) && viewer.sees(None));
        assert!(Visibility::of(&[Binding { role: Role::Viewer, org: None }], ExportAudit).nothing());
        for role in Role::ALL {
            let binding = Binding { role, org: (role.org_rule() != OrgRule::Forbidden).then_some(ORG) };
            for action in Action::ALL {
                let v = Visibility::of(&[binding], action);
                assert_eq!(v.sees(None), binding_allows(binding, action, Scope::Account), "{role} {action:?}");
                assert_eq!(v.sees(Some(ORG)), binding_allows(binding, action, Scope::Org(ORG)), "{role} {action:?}");
                assert_eq!(v.sees(Some(OTHER_ORG)), binding_allows(binding, action, Scope::Org(OTHER_ORG)), "{role} {action:?}");
            }
        }
    }

    #[test]
    fn role_names_round_trip() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Role::parse("superuser"), None);
    }
}
