//! Response bodies an instance keeps after sending them, to send again
//! without reading them from the store.
//!
//! An article request reads a stored article (100-200 KB) from the
//! key-value store, which the host copies into the instance's memory, and
//! then sends it, which the host copies out again. An instance serves many
//! requests (Spin reuses instances), so the articles component keeps the
//! buffers it sent here, each under a [`Tag`]: the article's key and the
//! `copy` of its title-index entry, a number drawn anew at every write of
//! the article (`wikiedge_core::article::layout::Entry::copy`). A later
//! request whose index read gives the same tag sends the kept buffer: one
//! copy of the article per request instead of two, and no store read. A
//! write of the article gives it a new `copy`, so a kept buffer is never
//! sent for a newer index entry; kept buffers of the same key with another
//! `copy` are dropped when that key is next looked up.
//!
//! A tag also names the body's [`Tag::form`]: the stored value as read, or a
//! document made from it (the structured contents of an article, or either
//! route's document for the `fields` and filters a client asked for, which
//! cost far more to make than to send). Such a document depends only on
//! the value it was made from and on what its form names, so the write
//! names it as it names the value.
//!
//! Bounded per instance: at most [`MAX_BODIES`] buffers and [`MAX_BYTES`]
//! bytes, the oldest dropped first; a body over half of [`MAX_BYTES`] (a
//! rendering over [`MAX_RENDERING`], a selection over [`MAX_SELECTION`]) is
//! not kept. The bytes counted are the
//! ones each buffer holds (its capacity), not only the body's length. What
//! is kept goes when the instance does (the host retires idle instances).
//!
//! Sending a kept buffer hands it to the response stream, which gives the
//! same allocation back once the host has read it (see
//! [`crate::respond::Reply::into_wasi`]); a buffer whose send did not
//! complete is not kept.

use std::cell::RefCell;

/// The most buffers an instance keeps: the number of requests an instance
/// serves at once by default (Spin's and the host's reuse bound).
pub const MAX_BODIES: usize = 16;
/// The most bytes an instance keeps.
pub const MAX_BYTES: usize = 4 << 20;

/// What a kept buffer is: the stored value's key, the write it holds, and
/// what the buffer makes of that value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    /// The key the value was read under.
    pub key: String,
    /// The write of the value (never 0: a value without one is not kept).
    pub copy: u64,
    /// What the buffer is: the value as read, or what was made of it.
    pub form: Form,
}

/// What a kept buffer makes of the value it was made from, with all that
/// it depends on beside the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Form {
    /// The value as it was read.
    Stored,
    /// A document rendered from the whole value (the structured contents
    /// of an article), by the route's name.
    Rendered(&'static str),
    /// A document made from the value for what a client selected (the
    /// `fields` and filters of either route), by the route's name and the
    /// selection written out.
    Selected(String),
}

/// The largest rendering kept. Making one takes about three times its
/// size at once in the instance (the value, the document, the buffer); a
/// large one kept puts the next one's peak higher in the instance's
/// memory, which only grows.
pub const MAX_RENDERING: usize = MAX_BYTES / 4;

/// The largest selection kept. The selections worth keeping are the small
/// ones asked again and again (a name, an abstract, an infobox, a
/// version): making one costs a parse of the whole value, keeping it
/// little. A large one would take the room the instance needs to make the
/// next document (the structured contents of an article take about five
/// times its stored size at their peak, more for a page of one long
/// paragraph: BENCHMARKS.md, "Selections kept"), and its making costs
/// little beside its sending.
pub const MAX_SELECTION: usize = 64 << 10;

/// Buffers kept by one instance, oldest first.
#[derive(Debug, Default)]
pub struct Kept {
    bodies: Vec<(Tag, Vec<u8>)>,
}

impl Kept {
    /// Takes a buffer kept under `tag`, if any. Buffers of the same key
    /// with another `copy` are stale, whatever their form: they are dropped.
    pub fn take(&mut self, tag: &Tag) -> Option<Vec<u8>> {
        self.bodies
            .retain(|(kept, _)| kept.key != tag.key || kept.copy == tag.copy);
        let i = self.bodies.iter().rposition(|(kept, _)| kept == tag)?;
        Some(self.bodies.remove(i).1)
    }

    /// Keeps `body` under `tag`, dropping the oldest buffers to stay within
    /// the bounds. A body over half of [`MAX_BYTES`] (a rendering over
    /// [`MAX_RENDERING`], a selection over [`MAX_SELECTION`]), or a tag
    /// without a write (`copy` 0), is not kept.
    pub fn keep(&mut self, tag: Tag, body: Vec<u8>) {
        let largest = match tag.form {
            Form::Stored => MAX_BYTES / 2,
            Form::Rendered(_) => MAX_RENDERING,
            Form::Selected(_) => MAX_SELECTION,
        };
        if tag.copy == 0 || body.capacity() > largest {
            return;
        }
        while !self.bodies.is_empty()
            && (self.bodies.len() >= MAX_BODIES || self.size().1 + body.capacity() > MAX_BYTES)
        {
            self.bodies.remove(0);
        }
        self.bodies.push((tag, body));
    }

    /// How many buffers are kept, and the bytes they hold.
    pub fn size(&self) -> (usize, usize) {
        let bytes = self.bodies.iter().map(|(_, body)| body.capacity()).sum();
        (self.bodies.len(), bytes)
    }
}

thread_local! {
    /// This instance's kept buffers (a component runs one thread).
    static KEPT: RefCell<Kept> = RefCell::new(Kept::default());
}

/// Takes a buffer this instance kept under `tag`.
pub fn take(tag: &Tag) -> Option<Vec<u8>> {
    KEPT.with_borrow_mut(|kept| kept.take(tag))
}

/// Keeps a sent buffer in this instance under `tag`.
pub fn keep(tag: Tag, body: Vec<u8>) {
    KEPT.with_borrow_mut(|kept| kept.keep(tag, body));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(key: &str, copy: u64) -> Tag {
        Tag {
            key: key.into(),
            copy,
            form: Form::Stored,
        }
    }

    #[test]
    fn a_rendering_is_taken_only_in_its_own_form_and_goes_stale_with_the_value() {
        let mut kept = Kept::default();
        let rendered = |copy| Tag {
            form: Form::Rendered("structured-contents"),
            ..tag("a", copy)
        };
        kept.keep(tag("a", 7), b"[stored]".to_vec());
        kept.keep(rendered(7), b"[rendered]".to_vec());
        assert_eq!(kept.take(&rendered(7)).as_deref(), Some(&b"[rendered]"[..]));
        assert_eq!(kept.take(&rendered(7)), None, "taken once");
        assert_eq!(kept.take(&tag("a", 7)).as_deref(), Some(&b"[stored]"[..]));

        kept.keep(tag("a", 7), b"[stored]".to_vec());
        kept.keep(rendered(7), b"[rendered]".to_vec());
        kept.keep(tag("b", 7), b"[b]".to_vec());
        // A new write of `a`, looked up in the stored form, drops the
        // rendering of the old write too.
        assert_eq!(kept.take(&tag("a", 8)), None);
        assert_eq!(kept.size(), (1, 3));
        assert_eq!(kept.take(&rendered(7)), None);
    }

    #[test]
    fn each_selection_is_a_form_of_its_own_and_all_go_stale_with_the_value() {
        let mut kept = Kept::default();
        let selected = |copy, form: &str| Tag {
            form: Form::Selected(form.into()),
            ..tag("a", copy)
        };
        let (one, other) = (r#"articles [["name"],[]]"#, r#"articles [["url"],[]]"#);
        kept.keep(selected(7, one), b"[name]".to_vec());
        kept.keep(selected(7, other), b"[url]".to_vec());
        assert_eq!(kept.take(&tag("a", 7)), None, "no stored value was kept");
        assert_eq!(
            kept.take(&selected(7, other)).as_deref(),
            Some(&b"[url]"[..])
        );
        assert_eq!(kept.take(&selected(7, other)), None);
        kept.keep(selected(7, other), b"[url]".to_vec());
        // A new write drops every selection made from the old one.
        assert_eq!(kept.take(&selected(8, one)), None);
        assert_eq!(kept.size(), (0, 0));
    }

    #[test]
    fn a_kept_body_is_taken_under_its_tag_only_once() {
        let mut kept = Kept::default();
        kept.keep(tag("a", 7), b"[1]".to_vec());
        assert_eq!(kept.take(&tag("b", 7)), None);
        assert_eq!(kept.take(&tag("a", 7)).as_deref(), Some(&b"[1]"[..]));
        assert_eq!(kept.take(&tag("a", 7)), None);
        assert_eq!(kept.size(), (0, 0));
    }

    #[test]
    fn another_write_of_the_key_is_not_served_the_kept_body_and_drops_it() {
        let mut kept = Kept::default();
        kept.keep(tag("a", 7), b"[old]".to_vec());
        kept.keep(tag("a", 7), b"[old]".to_vec());
        kept.keep(tag("b", 1), b"[b]".to_vec());
        assert_eq!(kept.take(&tag("a", 8)), None);
        // The stale ones went; the other key stayed.
        assert_eq!(kept.size(), (1, 3));
        assert_eq!(kept.take(&tag("a", 7)), None);
        assert!(kept.take(&tag("b", 1)).is_some());
    }

    #[test]
    fn values_without_a_write_or_too_large_are_not_kept() {
        let mut kept = Kept::default();
        kept.keep(tag("a", 0), b"[1]".to_vec());
        kept.keep(tag("b", 1), vec![b' '; MAX_BYTES / 2 + 1]);
        assert_eq!(kept.size(), (0, 0));
        // What a buffer holds counts, not only what it is filled with.
        kept.keep(tag("c", 1), Vec::with_capacity(MAX_BYTES / 2 + 1));
        assert_eq!(kept.size(), (0, 0));
        // A rendering has a lower bound than a stored value.
        let rendered = Tag {
            form: Form::Rendered("structured-contents"),
            ..tag("d", 1)
        };
        kept.keep(rendered.clone(), vec![b' '; MAX_RENDERING + 1]);
        assert_eq!(kept.size(), (0, 0));
        kept.keep(rendered, vec![b' '; MAX_RENDERING]);
        kept.keep(tag("e", 1), vec![b' '; MAX_RENDERING + 1]);
        assert_eq!(kept.size(), (2, 2 * MAX_RENDERING + 1));
        // A selection has a lower bound still.
        let selected = Tag {
            form: Form::Selected("articles [[\"name\"],[]]".into()),
            ..tag("f", 1)
        };
        kept.keep(selected.clone(), vec![b' '; MAX_SELECTION + 1]);
        assert_eq!(kept.size(), (2, 2 * MAX_RENDERING + 1));
        kept.keep(selected, vec![b' '; MAX_SELECTION]);
        assert_eq!(kept.size(), (3, 2 * MAX_RENDERING + 1 + MAX_SELECTION));
    }

    #[test]
    fn the_oldest_bodies_go_first_to_stay_within_the_bounds() {
        let mut kept = Kept::default();
        for i in 0..MAX_BODIES + 3 {
            kept.keep(tag(&format!("k{i}"), 1), vec![0; 10]);
        }
        assert_eq!(kept.size(), (MAX_BODIES, MAX_BODIES * 10));
        assert_eq!(kept.take(&tag("k2", 1)), None);
        assert!(kept.take(&tag("k3", 1)).is_some());

        let mut kept = Kept::default();
        let third = MAX_BYTES / 3;
        for i in 0..4 {
            kept.keep(tag(&format!("k{i}"), 1), vec![0; third]);
        }
        assert_eq!(kept.size(), (3, 3 * third));
        assert_eq!(kept.take(&tag("k0", 1)), None);
        assert!(kept.take(&tag("k1", 1)).is_some());
    }
}
