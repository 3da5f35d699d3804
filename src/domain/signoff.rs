//! Sign-off links: how long they work, and what a link that no longer works says.

pub const LINK_DAYS: i64 = 7;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkState {
    Valid,
    Unknown,
    Used,
    Expired,
    Voided,
    Foreign,
    Decided,
}

impl LinkState {
    /// What the plain page says.
    pub fn message(&self) -> &'static str {
        match self {
            LinkState::Valid => "",
            LinkState::Unknown => "This sign-off link is not valid. Open the release to see what is waiting for you.",
            LinkState::Used => "This sign-off link was already used: your decision is recorded.",
            LinkState::Expired => "This sign-off link has expired. Open the release to decide there.",
            LinkState::Voided => "This sign-off link was voided: the approval was retried and a new round opened, with new links.",
            LinkState::Foreign => "This sign-off link belongs to another approver. Log in as that approver, or open the release.",
            LinkState::Decided => "This approval has already been decided; nothing is waiting for your vote.",
        }
    }
}
