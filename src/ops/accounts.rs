//! Accounts (tenants): created by the operator from the CLI, and by the demo seed.

use diesel_async::{AsyncConnection, AsyncPgConnection};

use crate::db::audit::{self, NewEvent};
use crate::db::models::accounts::Account;
use crate::domain::validate;
use crate::ops::OpError;

pub async fn create_account(
    conn: &mut AsyncPgConnection,
    slug: &str,
    name: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Account, OpError> {
    let slug = validate::slug(slug).map_err(|m| OpError::invalid("slug", m))?;
    let name = validate::name(name).map_err(|m| OpError::invalid("name", m))?;
    if Account::by_slug(conn, &slug).await?.is_some() {
        return Err(OpError::Duplicate { field: "slug", message: format!("an account with slug {slug:?} already exists") });
    }
    let account = conn
        .transaction(async |conn| {
            let account = Account::create(conn, &slug, &name, now).await?;
            audit::append(conn, NewEvent::account(account.id, "system:cli", "account.create", format!("account:{slug}")), now).await?;
            Ok::<_, diesel::result::Error>(account)
        })
        .await?;
    Ok(account)
}
