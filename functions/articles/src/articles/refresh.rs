//! Step 5 of an article lookup: refreshing a copy from upstream, and
//! recording the outcome (the new copy, or the retry backoff of the old).

use wikiedge_core::Error;
use wikiedge_core::article::pipeline::Freshness;
use wikiedge_core::article::schema::Article;
use wikiedge_core::article::transform::ProjectContext;
use wikiedge_fn::upstream;

use super::candidates::Candidate;
use crate::config::Config;
use crate::store;

/// Fetches one candidate from its upstream and caches it; on failure the
/// old copy, if any, is kept to be served stale, as the core's
/// [`Freshness::after_failure`] decides. Returns the upstream error, if
/// any, for the case that nothing at all can be served.
pub async fn refresh(
    config: &Config,
    kv: &spin_sdk::key_value::Store,
    c: &mut Candidate,
    now: u64,
) -> Option<Error> {
    match fetch(config, c).await {
        Ok(article) => {
            let json = match wikiedge_core::article::layout::to_stored(&article) {
                Ok(json) => json,
                Err(e) => return Some(Error::Internal(e.to_string())),
            };
            let rev = article
                .version
                .as_ref()
                .and_then(|v| v.identifier)
                .unwrap_or(0);
            let entry = wikiedge_core::article::layout::Entry {
                copy: store::new_copy(),
                ..Freshness::fetched(rev, now)
            };
            if let Err(err) = store::write_article(kv, &c.project, &c.title, &json, entry).await {
                eprintln!(
                    "articles: caching {}:{} failed: {err:?}",
                    c.project, c.title
                );
            }
            c.entry = Some(entry);
            c.json = Some(json);
            c.stale = false;
            None
        }
        Err(err) => {
            let gone = matches!(err, Error::NotFound(_));
            c.entry = config.freshness().after_failure(c.entry, gone, now);
            if let Some(entry) = c.entry {
                eprintln!("articles: serving stale {}:{}: {err}", c.project, c.title);
                if let Err(e) = store::update_entry(&c.project, &c.title, entry) {
                    eprintln!("articles: recording retry backoff failed: {e:?}");
                }
                c.stale = true;
            }
            Some(err)
        }
    }
}

/// The article from the candidate's upstream (an override, else the
/// project's own MediaWiki); a closed project without override is gone.
async fn fetch(config: &Config, c: &Candidate) -> Result<Article, Error> {
    let registry = wikiedge_fn::config::registry()?;
    if registry.is_closed(&c.project) && !config.overrides.contains_key(&c.project) {
        return Err(Error::NotFound("article not found".into()));
    }
    let base = wikiedge_fn::config::base_url(&config.overrides, &c.project)?;
    // Article URLs use the project's public URL even when the fetch goes to
    // an override; a project only the overrides know uses that.
    let ctx =
        ProjectContext::from_registry(registry, &c.project).unwrap_or_else(|_| ProjectContext {
            identifier: c.project.clone(),
            base_url: base.clone(),
            language: String::new(),
            localisation: Default::default(),
        });
    let mut article = upstream::fetch(&base, &c.title, &ctx, config.timeout).await?;
    if let Some(url) = &config.revertrisk_url {
        upstream::add_revertrisk(&mut article, url, config.revertrisk_timeout).await;
    }
    Ok(article)
}
