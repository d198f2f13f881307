//! Stores opened once per component instance, not once per request.
//!
//! Opening a store is a call into the host, and dropping its handle is
//! another. An instance may serve many requests (Spin 4's instance reuse,
//! and the embedded host's), each of which opened its stores anew: four
//! opens and four drops on an article request. A handle stays valid for
//! as long as the instance lives, and the store behind a label never
//! changes within it, so the first open is kept in a per-instance slot
//! and shared. A failed open is not kept: the next caller tries again.
//! Where each instance serves one request, nothing changes.

use std::cell::RefCell;
use std::rc::Rc;
use std::thread::LocalKey;

/// A slot for one opened store (declare with `thread_local!`: a component
/// instance runs on one thread).
pub type Slot<T> = RefCell<Option<Rc<T>>>;

/// The handle in `slot`, or `open`'s, kept there when it succeeds.
pub fn get_or_open<T, E>(
    slot: &'static LocalKey<Slot<T>>,
    open: impl FnOnce() -> Result<T, E>,
) -> Result<Rc<T>, E> {
    if let Some(kept) = kept(slot) {
        return Ok(kept);
    }
    let opened = Rc::new(open()?);
    Ok(keep(slot, opened))
}

/// [`get_or_open`] for an asynchronous open. Two requests of one instance
/// that both find the slot empty both open; the first to finish is kept
/// and the other's handle is dropped.
pub async fn get_or_open_async<T, E, F>(
    slot: &'static LocalKey<Slot<T>>,
    open: impl FnOnce() -> F,
) -> Result<Rc<T>, E>
where
    F: Future<Output = Result<T, E>>,
{
    if let Some(kept) = kept(slot) {
        return Ok(kept);
    }
    let opened = Rc::new(open().await?);
    Ok(keep(slot, opened))
}

/// The handle in `slot`, if one was kept.
fn kept<T>(slot: &'static LocalKey<Slot<T>>) -> Option<Rc<T>> {
    slot.with(|s| s.borrow().clone())
}

/// Keeps `opened` unless the slot was filled meanwhile; returns the kept one.
fn keep<T>(slot: &'static LocalKey<Slot<T>>, opened: Rc<T>) -> Rc<T> {
    slot.with(|s| s.borrow_mut().get_or_insert(opened).clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    thread_local! {
        static SLOT: Slot<u32> = const { RefCell::new(None) };
        static OPENS: Cell<u32> = const { Cell::new(0) };
    }

    fn open(ok: bool) -> Result<u32, &'static str> {
        OPENS.with(|n| n.set(n.get() + 1));
        if ok {
            Ok(OPENS.with(Cell::get))
        } else {
            Err("down")
        }
    }

    #[test]
    fn a_failed_open_is_not_kept_and_a_good_one_is_shared() {
        assert_eq!(get_or_open(&SLOT, || open(false)), Err("down"));
        let first = get_or_open(&SLOT, || open(true));
        let again = get_or_open(&SLOT, || open(true));
        assert_eq!(first.as_deref(), Ok(&2));
        assert!(matches!((&first, &again), (Ok(a), Ok(b)) if Rc::ptr_eq(a, b)));
        assert_eq!(OPENS.with(Cell::get), 2, "the second call must not open");
    }
}
