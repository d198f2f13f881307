//! The usage reports: `GET /v1/usage` (own daily rows) and
//! `GET /v1/admin/usage` (every account, one month).
//!
//! Both read counters with batched `get-many` (256 keys a call): a usage
//! query reads 15 keys per day (5 products x 3 kinds), the admin report 15
//! per day of the month per account in one page of the month's listing
//! ([`wikiedge_core::metering::index`]): at most 200 accounts a request, so
//! a request's work is bounded whatever the number of accounts, and the
//! whole report costs time linear in them. A page that is not the last
//! carries `Link: <...>; rel="next"` (RFC 8288).

use spin_sdk::http::{HeaderValue, Request};
use wikiedge_core::Error;
use wikiedge_core::auth::username;
use wikiedge_core::listing::Page;
use wikiedge_core::metering::counter::decode_counter;
use wikiedge_core::metering::index::{self, DEFAULT_PAGE, MAX_PAGE};
use wikiedge_core::metering::rows::{CsvRow, month_keys, query_keys};
use wikiedge_core::metering::{UsageQuery, UsageRow, build_rows, monthly_rows, to_csv};
use wikiedge_core::quota::{Date, Month};

use wikiedge_fn::caller::{self, Caller};
use wikiedge_fn::kv::{self, Bucket};
use wikiedge_fn::now;
use wikiedge_fn::web::{self, Resp};

/// Whether the client asked for CSV.
fn wants_csv(req: &Request) -> bool {
    web::header(req, "accept").is_some_and(|a| {
        a.split(',').any(|m| {
            m.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case("text/csv")
        })
    })
}

fn csv<R: CsvRow>(rows: &[R]) -> Resp {
    web::response(200, "text/csv; charset=utf-8", to_csv(rows))
}

/// Reads counters; a corrupt one is a 500.
fn counters(
    bucket: &Bucket,
    keys: &[String],
) -> Result<std::collections::HashMap<String, i64>, Error> {
    kv::get_many(bucket, keys)?
        .into_iter()
        .map(|(k, v)| decode_counter(&v).map(|n| (k, n)))
        .collect()
}

#[derive(serde::Serialize)]
struct UsageReport<'a> {
    account: &'a str,
    from: String,
    to: String,
    usage: Vec<UsageRow>,
}

/// `GET /v1/usage`: the caller's own usage. The `account` parameter is for
/// admins only (403 for anyone else) and required with the bare admin key.
pub async fn own(req: Request) -> Result<Resp, Error> {
    let bucket = kv::open()?;
    let caller = caller::authenticate(&req, &bucket).await?;
    let asked = web::query(&req, "account");
    let account = match (&caller, asked) {
        (Caller::Account(p), None) => p.account.clone(),
        (caller, Some(name)) => {
            caller.require_admin().map_err(|_| {
                Error::Forbidden("Only admins may read another account's usage".into())
            })?;
            username::validate(&name)?
        }
        (Caller::AdminKey, None) => {
            return Err(Error::Unprocessable(
                "account is required when using the admin key".into(),
            ));
        }
    };
    let today = Date::from_unix(now());
    let from = web::query(&req, "from");
    let to = web::query(&req, "to");
    let query = UsageQuery::parse(from.as_deref(), to.as_deref(), today)?;
    let values = counters(&bucket, &query_keys(&account, &query))?;
    let rows = build_rows(&account, &query, |k| values.get(k).copied());
    if wants_csv(&req) {
        return Ok(csv(&rows));
    }
    Ok(web::json(
        200,
        &UsageReport {
            account: &account,
            from: query.from.to_string(),
            to: query.to.to_string(),
            usage: rows,
        },
    ))
}

/// `GET /v1/admin/usage?month=YYYY-MM&limit=N&after=SEQ` (default: this
/// month, 100 accounts from the start): one page of the month's rows.
pub async fn admin(req: Request) -> Result<Resp, Error> {
    let bucket = kv::open()?;
    caller::authenticate(&req, &bucket).await?.require_admin()?;
    let month = match web::query(&req, "month") {
        Some(text) => Month::parse(&text)?,
        None => Month::from_unix(now()),
    };
    let page = Page::parse(
        web::query(&req, "after").as_deref(),
        web::query(&req, "limit").as_deref(),
        DEFAULT_PAGE,
        MAX_PAGE,
    )?;
    let (accounts, count) = kv::listing_page(&bucket, &index::accounts(month), page)?;
    let keys: Vec<String> = accounts.iter().flat_map(|a| month_keys(a, month)).collect();
    let values = counters(&bucket, &keys)?;
    let rows = monthly_rows(accounts.iter().map(String::as_str), month, |k| {
        values.get(k).copied()
    });
    let mut resp = if wants_csv(&req) {
        csv(&rows)
    } else {
        web::json(200, &rows)
    };
    let path = format!("/v1/admin/usage?month={month}&");
    if let Some(value) = page
        .next_link(&path, count)
        .and_then(|link| HeaderValue::from_str(&link).ok())
    {
        resp.headers_mut().insert("link", value);
    }
    Ok(resp)
}
