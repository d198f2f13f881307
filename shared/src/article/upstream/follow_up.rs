//! The follow-up call: once the page query has named the editor and the
//! parent revision, one more Action API query for the editor's record and
//! the parent's text.

use serde_json::Value;

use super::*;

/// The Action API query string of the follow-up call, sent once the page
/// query has named the editor and the parent revision: the editor's edit
/// count, groups and registration (`list=users`), and the parent
/// revision's text (`prop=revisions&revids=`), whose length in characters
/// is `previous_version.number_of_characters`. A list module and a prop
/// module share one query, so it is one call; either half is left out when
/// it is not needed.
pub const USERS_QUERY: &str = "list=users&usprop=editcount%7Cgroups%7Cregistration";

/// The revision half of the follow-up call (see [`USERS_QUERY`]).
pub const PARENT_QUERY: &str = "prop=revisions&rvprop=ids%7Csize%7Ccontent&rvslots=main";

/// The follow-up Action API URL for an article built by
/// [`article_from_upstream`] (see [`USERS_QUERY`]); `None` when there is
/// nothing to ask: the editor is anonymous or hidden (IP editors have no
/// user record) and the revision has no parent.
pub fn follow_up_url(base_url: &str, article: &Article) -> Option<String> {
    let version = article.version.as_ref();
    let user = version
        .and_then(|v| v.editor.as_ref())
        .filter(|e| e.is_anonymous != Some(true) && e.identifier.is_some())
        .and_then(|e| e.name.as_deref());
    let parent = article.previous_version.as_ref().and_then(|p| p.identifier);
    if user.is_none() && parent.is_none() {
        return None;
    }
    let mut url = format!(
        "{}/w/api.php?action=query&format=json&formatversion=2",
        base_url.trim_end_matches('/')
    );
    if let Some(name) = user {
        url.push_str(&format!(
            "&{USERS_QUERY}&ususers={}",
            encode_component(name)
        ));
    }
    if let Some(id) = parent {
        url.push_str(&format!("&{PARENT_QUERY}&revids={id}"));
    }
    Some(url)
}

/// The text of one revision of `prop=revisions&rvprop=content`: the main
/// slot's `content` (`rvslots=main`, formatversion 2) or `*` (format
/// version 1, or answers without slots); `None` when hidden.
pub(super) fn revision_text(revision: &Value) -> Option<&str> {
    let main = revision.pointer("/slots/main").unwrap_or(revision);
    if main.get("texthidden").is_some() || revision.get("texthidden").is_some() {
        return None;
    }
    main.get("content")
        .or_else(|| main.get("*"))
        .and_then(Value::as_str)
}

/// Fills from the answer to [`follow_up_url`] what it tells: the editor's
/// `edit_count`, `groups`, `date_started` and the flags WME derives from the
/// groups ([`Editor::with_group_flags`]), and
/// `previous_version.number_of_characters`. Only a user record with the
/// editor's name (and id) and only the parent revision's text are used; an
/// answer that says nothing, or garbage, leaves the article as it was.
pub fn apply_follow_up(article: &mut Article, json: &[u8]) {
    let Ok(root) = serde_json::from_slice::<Value>(json) else {
        return;
    };
    if let Some(editor) = article.version.as_mut().and_then(|v| v.editor.as_mut())
        && editor.is_anonymous != Some(true)
        && let Some(user) = root
            .pointer("/query/users")
            .and_then(Value::as_array)
            .and_then(|users| {
                users.iter().find(|u| {
                    u.get("name").and_then(Value::as_str) == editor.name.as_deref()
                        && u.get("missing").is_none()
                        && u.get("invalid").is_none()
                        && editor
                            .identifier
                            .is_none_or(|id| u.get("userid").and_then(Value::as_u64) == Some(id))
                })
            })
    {
        editor.edit_count = user.get("editcount").and_then(Value::as_u64);
        editor.groups = user
            .get("groups")
            .and_then(Value::as_array)
            .map(|g| {
                g.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        editor.date_started = user
            .get("registration")
            .and_then(Value::as_str)
            .map(str::to_string);
        *editor = std::mem::take(editor).with_group_flags();
    }
    if let Some(previous) = article.previous_version.as_mut()
        && let Some(parent) = previous.identifier
        && let Some(text) = first_page(&root)
            .and_then(|p| p.get("revisions"))
            .and_then(Value::as_array)
            .and_then(|revs| {
                revs.iter()
                    .find(|r| r.get("revid").and_then(Value::as_u64) == Some(parent))
            })
            .and_then(revision_text)
    {
        previous.number_of_characters = Some(text.chars().count() as u64);
    }
}
