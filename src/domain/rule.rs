//! The codes of broken business rules, as the API names them (`error.code`).

/// A rule a request broke; serializes to the code the API has always used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleCode {
    ActivationRefused,
    CallbackExpired,
    DefinitionRefused,
    DeleteRefused,
    InUse,
    LastAdmin,
    MissingInputs,
    NoVersion,
    NotDraft,
    NotFinished,
    NotHotfix,
    NotInFlight,
    NotScheduled,
    NotWaiting,
    ReleaseLevel,
    ReservedHeader,
    Scheduled,
    SelfDisable,
    TokenFromToken,
    UpToDate,
}

impl RuleCode {
    pub fn as_str(self) -> &'static str {
        match self {
            RuleCode::ActivationRefused => "activation_refused",
            RuleCode::CallbackExpired => "callback_expired",
            RuleCode::DefinitionRefused => "definition_refused",
            RuleCode::DeleteRefused => "delete_refused",
            RuleCode::InUse => "in_use",
            RuleCode::LastAdmin => "last_admin",
            RuleCode::MissingInputs => "missing_inputs",
            RuleCode::NoVersion => "no_version",
            RuleCode::NotDraft => "not_draft",
            RuleCode::NotFinished => "not_finished",
            RuleCode::NotHotfix => "not_hotfix",
            RuleCode::NotInFlight => "not_in_flight",
            RuleCode::NotScheduled => "not_scheduled",
            RuleCode::NotWaiting => "not_waiting",
            RuleCode::ReleaseLevel => "release_level",
            RuleCode::ReservedHeader => "reserved_header",
            RuleCode::Scheduled => "scheduled",
            RuleCode::SelfDisable => "self_disable",
            RuleCode::TokenFromToken => "token_from_token",
            RuleCode::UpToDate => "up_to_date",
        }
    }
}

impl RuleCode {
    /// "Not in this state" (HTTP 409, DESIGN §10), as opposed to a rule refusing the input (422).
    pub fn is_state_conflict(self) -> bool {
        matches!(
            self,
            RuleCode::NotDraft
                | RuleCode::NotInFlight
                | RuleCode::NotFinished
                | RuleCode::NotScheduled
                | RuleCode::NotWaiting
                | RuleCode::Scheduled
                | RuleCode::UpToDate
        )
    }
}

impl RuleCode {
    /// Refused because of who asks or how (HTTP 403), not because of the input.
    pub fn is_forbidden(self) -> bool {
        matches!(self, RuleCode::TokenFromToken)
    }
}

impl std::fmt::Display for RuleCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::RuleCode;

    #[test]
    fn codes_serialize_as_the_api_names_them() {
        for code in [RuleCode::NotDraft, RuleCode::MissingInputs, RuleCode::UpToDate, RuleCode::InUse] {
            assert_eq!(serde_json::to_value(code).unwrap(), serde_json::Value::String(code.as_str().into()));
        }
    }
}
