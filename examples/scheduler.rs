//! Green threads: many tasks on one thread, each a [`splitstack::Coroutine`], run round-robin,
//! talking through unbounded channels. A library on top of the coroutine API, in one file.
//!
//! - [`spawn`] queues a task (from outside the scheduler or from a task);
//! - [`run`] runs the queued tasks round-robin until every task has finished;
//! - [`yield_now`] puts the running task at the back of the queue;
//! - [`channel`] makes a [`Sender`] (cloneable; `send` never blocks) and a [`Receiver`] whose
//!   `recv` suspends the task while the channel is empty.
//!
//! A task blocked in `recv` is parked: it is off the run queue, and only a `send` to its channel
//! (or the drop of that channel's last `Sender`) puts it back. So a receiver never spins: when
//! every live task is parked, nothing can ever wake one, and `run` reports the deadlock as
//! `Err(Deadlock)` instead of hanging, after dropping the parked tasks (each is unwound, so the
//! destructors on its stack run, and its stack goes back to the thread's pool).
//!
//! The scheduler is per thread (a thread-local), and `run` is not reentrant: calling it from a
//! task panics. A panic in a task drops the other tasks and then continues from `run`. Blocking
//! calls (`recv` on an empty channel) outside a task panic, since there is nothing to suspend;
//! `yield_now` outside a task does nothing.
//!
//! Run the demonstration with `cargo run --release --example scheduler`, the tests with
//! `cargo test --release --example scheduler`.

use splitstack::{Coroutine, CoroutineResult, Yielder};
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::time::Instant;

/// Why a task suspended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Suspend {
    /// [`yield_now`]: ready again at once, behind the others.
    Yield,
    /// `recv` on an empty channel: parked until the channel is sent to.
    Park,
}

/// A task's coroutine: resumed with nothing, suspends with its reason.
type TaskCo = Coroutine<(), Suspend, ()>;

/// A task's place in the scheduler's slab, with the slot's generation, so that a stale id (of a
/// task that has finished, its slot reused) wakes nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct TaskId {
    index: usize,
    generation: u64,
}

/// One slot of the slab.
struct Slot {
    generation: u64,
    /// `None` while the slot is free, and while its task runs (the run loop holds it then).
    co: Option<TaskCo>,
    live: bool,
    parked: bool,
}

/// The thread's scheduler: the tasks and the run queue.
#[derive(Default)]
struct Scheduler {
    slots: Vec<Slot>,
    free: Vec<usize>,
    ready: VecDeque<TaskId>,
    /// Tasks spawned and not finished.
    live: usize,
    running: bool,
}

impl Scheduler {
    /// Puts a parked task back on the run queue; ids of finished or unparked tasks are ignored.
    fn wake(&mut self, id: TaskId) {
        if let Some(slot) = self.slots.get_mut(id.index) {
            if slot.live && slot.generation == id.generation && slot.parked {
                slot.parked = false;
                self.ready.push_back(id);
            }
        }
    }
}

thread_local! {
    static SCHEDULER: RefCell<Scheduler> = RefCell::default();
    /// The running task's yielder and id; null outside tasks.
    static CURRENT: Cell<(*const Yielder<(), Suspend>, Option<TaskId>)> =
        const { Cell::new((std::ptr::null(), None)) };
}

/// The running task's id, or `None` outside tasks.
fn current_task() -> Option<TaskId> {
    CURRENT.with(|c| c.get().1)
}

/// Suspends the running task, telling the run loop why.
///
/// # Panics
/// Outside a task.
fn suspend(why: Suspend) {
    let (yielder, id) = CURRENT.with(Cell::get);
    assert!(!yielder.is_null(), "scheduler: a task blocked outside of any task");
    // SAFETY: CURRENT holds a yielder only while its task runs: the task's coroutine sets it
    // from the `&Yielder` its closure was called with (alive for the whole closure call, on the
    // coroutine's stack), when it starts and after every suspend returns, and the run loop
    // clears it whenever a resume returns. So it is the running task's own, and live.
    unsafe { (*yielder).suspend(why) };
    CURRENT.with(|c| c.set((yielder, id)));
}

/// Queues a task running `f`. It starts at the next [`run`], or within the current one.
pub fn spawn<F: FnOnce() + 'static>(f: F) {
    let co: TaskCo = Coroutine::new(move |yielder: &Yielder<(), Suspend>, ()| {
        // The run loop has set CURRENT to (null, this task's id) for the first resume.
        CURRENT.with(|c| c.set((yielder as *const _, current_task())));
        f();
    });
    SCHEDULER.with(|s| {
        let mut s = s.borrow_mut();
        let index = match s.free.pop() {
            Some(index) => index,
            None => {
                s.slots.push(Slot { generation: 0, co: None, live: false, parked: false });
                s.slots.len() - 1
            }
        };
        let slot = &mut s.slots[index];
        slot.generation += 1;
        slot.co = Some(co);
        slot.live = true;
        slot.parked = false;
        let id = TaskId { index, generation: slot.generation };
        s.live += 1;
        s.ready.push_back(id);
    });
}

/// Lets the other ready tasks run before the running one continues; outside a task, does
/// nothing.
pub fn yield_now() {
    if current_task().is_some() {
        suspend(Suspend::Yield);
    }
}

/// `run` found every remaining task parked in `recv`, with nothing left that could send to
/// them; those tasks have been dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadlock {
    /// How many tasks were parked.
    pub parked: usize,
}

impl fmt::Display for Deadlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "deadlock: all {} remaining tasks wait on empty channels", self.parked)
    }
}

impl std::error::Error for Deadlock {}

/// Runs the spawned tasks round-robin until all have finished.
///
/// # Errors
/// [`Deadlock`] when the tasks left are all parked in `recv`: they are dropped (unwound) first.
///
/// # Panics
/// When called from a task; and with a task's panic payload, after dropping the other tasks.
pub fn run() -> Result<(), Deadlock> {
    SCHEDULER.with(|s| {
        let mut s = s.borrow_mut();
        assert!(!s.running, "scheduler: run() called from a task");
        s.running = true;
    });
    // Dropping tasks can wake others (a dropped Sender wakes its receiver), so no borrow of
    // the scheduler may be held while a coroutine runs or drops.
    let outcome = catch_unwind(AssertUnwindSafe(run_loop));
    drop_all_tasks();
    SCHEDULER.with(|s| s.borrow_mut().running = false);
    match outcome {
        Ok(result) => result,
        Err(payload) => resume_unwind(payload),
    }
}

/// The run loop proper: resume ready tasks until none is left or all are parked.
fn run_loop() -> Result<(), Deadlock> {
    loop {
        let next = SCHEDULER.with(|s| {
            let mut s = s.borrow_mut();
            while let Some(id) = s.ready.pop_front() {
                let slot = &mut s.slots[id.index];
                if slot.live && slot.generation == id.generation {
                    let co = slot.co.take().expect("a ready task is in its slot");
                    return Ok(Some((id, co)));
                }
            }
            if s.live == 0 {
                Ok(None)
            } else {
                Err(Deadlock { parked: s.live })
            }
        })?;
        let Some((id, mut co)) = next else { return Ok(()) };
        CURRENT.with(|c| c.set((std::ptr::null(), Some(id))));
        let result = catch_unwind(AssertUnwindSafe(|| co.resume(())));
        CURRENT.with(|c| c.set((std::ptr::null(), None)));
        let finished = match result {
            Ok(CoroutineResult::Yield(why)) => {
                SCHEDULER.with(|s| {
                    let mut s = s.borrow_mut();
                    let slot = &mut s.slots[id.index];
                    slot.co = Some(co);
                    match why {
                        Suspend::Yield => s.ready.push_back(id),
                        Suspend::Park => slot.parked = true,
                    }
                });
                continue;
            }
            Ok(CoroutineResult::Return(())) => Ok(co),
            Err(payload) => Err((co, payload)),
        };
        SCHEDULER.with(|s| {
            let mut s = s.borrow_mut();
            s.slots[id.index].live = false;
            s.free.push(id.index);
            s.live -= 1;
        });
        match finished {
            Ok(co) => drop(co),
            Err((co, payload)) => {
                drop(co);
                resume_unwind(payload);
            }
        }
    }
}

/// Drops every task still in the slab (each suspended one is unwound), outside any borrow of
/// the scheduler; what their destructors wake is dropped too.
fn drop_all_tasks() {
    loop {
        let tasks: Vec<TaskCo> = SCHEDULER.with(|s| {
            let mut s = s.borrow_mut();
            s.ready.clear();
            let mut tasks = Vec::new();
            for index in 0..s.slots.len() {
                let slot = &mut s.slots[index];
                if slot.live {
                    slot.live = false;
                    tasks.extend(slot.co.take());
                    s.free.push(index);
                    s.live -= 1;
                }
            }
            tasks
        });
        if tasks.is_empty() {
            break;
        }
        drop(tasks);
    }
}

/// A channel's shared state.
struct Chan<T> {
    queue: VecDeque<T>,
    /// The task parked in `recv` on this channel, if any.
    waiter: Option<TaskId>,
    senders: usize,
}

impl<T> Chan<T> {
    /// Wakes the parked receiver, if there is one.
    fn wake_receiver(&mut self) {
        if let Some(id) = self.waiter.take() {
            SCHEDULER.with(|s| s.borrow_mut().wake(id));
        }
    }
}

/// The sending half of a [`channel`]; cloneable.
pub struct Sender<T> {
    chan: Rc<RefCell<Chan<T>>>,
}

/// The receiving half of a [`channel`].
pub struct Receiver<T> {
    chan: Rc<RefCell<Chan<T>>>,
}

/// An unbounded channel between tasks of this thread.
pub fn channel<T>() -> (Sender<T>, Receiver<T>) {
    let chan = Rc::new(RefCell::new(Chan { queue: VecDeque::new(), waiter: None, senders: 1 }));
    (Sender { chan: chan.clone() }, Receiver { chan })
}

impl<T> Sender<T> {
    /// Queues `value` and wakes the receiver if it is parked; never blocks. A value sent after
    /// the receiver is dropped is dropped with the channel.
    pub fn send(&self, value: T) {
        let mut chan = self.chan.borrow_mut();
        chan.queue.push_back(value);
        chan.wake_receiver();
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.chan.borrow_mut().senders += 1;
        Sender { chan: self.chan.clone() }
    }
}

impl<T> Drop for Sender<T> {
    /// The last sender's drop wakes the receiver, whose `recv` then returns `None`.
    fn drop(&mut self) {
        let mut chan = self.chan.borrow_mut();
        chan.senders -= 1;
        if chan.senders == 0 {
            chan.wake_receiver();
        }
    }
}

impl<T> Receiver<T> {
    /// The next value; while the channel is empty, parks the running task until a send. `None`
    /// once the channel is empty and every [`Sender`] has been dropped.
    ///
    /// # Panics
    /// Outside a task, when it would have to wait.
    pub fn recv(&self) -> Option<T> {
        loop {
            {
                let mut chan = self.chan.borrow_mut();
                if let Some(value) = chan.queue.pop_front() {
                    return Some(value);
                }
                if chan.senders == 0 {
                    return None;
                }
                let id = current_task().expect("scheduler: recv() would block outside a task");
                chan.waiter = Some(id);
            }
            suspend(Suspend::Park);
        }
    }

    /// The next value if there is one, without waiting.
    pub fn try_recv(&self) -> Option<T> {
        self.chan.borrow_mut().queue.pop_front()
    }
}

/// Spawns `tasks` tasks in a ring, task `i` receiving from channel `i` and sending the token it
/// gets, plus one, to channel `i + 1`; task 0 gets `start`. After `laps` times round, the last
/// task sends the token to the returned receiver instead.
fn spawn_ring(tasks: usize, laps: usize, start: u64) -> Receiver<u64> {
    let (result_tx, result_rx) = channel();
    let (senders, receivers): (Vec<_>, Vec<_>) = (0..tasks).map(|_| channel()).unzip();
    senders[0].send(start);
    for (i, rx) in receivers.into_iter().enumerate() {
        let tx = senders[(i + 1) % tasks].clone();
        let result_tx = (i + 1 == tasks).then(|| result_tx.clone());
        spawn(move || {
            for lap in 0..laps {
                let token = rx.recv().expect("the ring's senders live as long as the ring");
                match &result_tx {
                    Some(result) if lap + 1 == laps => result.send(token + 1),
                    _ => tx.send(token + 1),
                }
            }
        });
    }
    result_rx
}

/// Runs a ring of `tasks` tasks `laps` times round and prints the time per task spawned and per
/// message hop.
fn time_ring(tasks: usize, laps: usize) {
    let start = Instant::now();
    let result = spawn_ring(tasks, laps, 0);
    let spawned = start.elapsed();
    let start = Instant::now();
    run().expect("the ring finishes");
    let ran = start.elapsed();
    let hops = tasks * laps;
    assert_eq!(result.try_recv(), Some(hops as u64));
    println!(
        "ring of {tasks:>6} tasks, {laps:>6} laps: {:>6.1} ns per message hop ({hops} hops), \
         spawn {:.0} ns per task",
        ran.as_nanos() as f64 / hops as f64,
        spawned.as_nanos() as f64 / tasks as f64,
    );
}

fn main() {
    // The large ring's tasks' stacks (1 MiB of address space each, DEFAULT_STACK_SIZE, of which
    // a task touches a few KiB) do not fit in the caches; the small one's do, and its stacks come
    // from the pool.
    time_ring(10_000, 100);
    time_ring(64, 10_000);

    let (tx, rx) = channel::<u32>();
    spawn(move || {
        let _ = rx.recv();
    });
    spawn(move || {
        let _keep = tx;
        let (_tx2, rx2) = channel::<u32>();
        let _ = rx2.recv();
    });
    println!("two tasks waiting on each other: {:?}", run());
    let stats = splitstack::machine::stats();
    println!(
        "after both runs: {} coroutine stacks pooled, {} mapped in all, {} segments in use",
        stats.coroutine_stacks_pooled, stats.coroutine_stacks_mapped, stats.segments_in_use
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use splitstack::machine;

    /// Counts its drops.
    struct DropCounter(Rc<Cell<u32>>);

    impl Drop for DropCounter {
        fn drop(&mut self) {
            self.0.set(self.0.get() + 1);
        }
    }

    #[test]
    fn a_token_goes_round_a_ring_of_10_000_tasks() {
        let (tasks, laps) = (10_000, 3);
        let result = spawn_ring(tasks, laps, 7);
        run().expect("the ring finishes");
        assert_eq!(result.try_recv(), Some(7 + (tasks * laps) as u64));
        let stats = machine::stats();
        assert_eq!(stats.segments_in_use, 0);
        // All 10,000 stacks came back; the pool keeps the most recent ones, up to its capacity.
        assert_eq!(stats.coroutine_stacks_pooled, machine::COROUTINE_POOL_CAPACITY as u64);
    }

    #[test]
    fn every_task_stack_goes_back_to_the_pool() {
        // On a thread of its own, so that the pool starts empty and the counts are this test's.
        std::thread::spawn(|| {
            let tasks = machine::COROUTINE_POOL_CAPACITY / 2;
            let (tx, rx) = channel::<usize>();
            for i in 0..tasks {
                let tx = tx.clone();
                spawn(move || {
                    // Deep enough to split onto segments of the task's own (past its 1 MiB stack).
                    fn deep(n: usize) -> usize {
                        splitstack::maybe_grow(8 * 1024, 64 * 1024, || {
                            if n == 0 {
                                yield_now();
                                0
                            } else {
                                1 + deep(std::hint::black_box(n - 1))
                            }
                        })
                    }
                    tx.send(i + deep(40_000));
                });
            }
            drop(tx);
            spawn(move || {
                let mut total = 0;
                while let Some(v) = rx.recv() {
                    total += v;
                }
                assert_eq!(total, tasks * 40_000 + tasks * (tasks - 1) / 2);
            });
            run().expect("no deadlock");
            let stats = machine::stats();
            assert!(stats.splits > 0, "the tasks should have run on segments");
            assert_eq!(stats.segments_in_use, 0);
            assert_eq!(
                stats.coroutine_stacks_pooled, stats.coroutine_stacks_mapped,
                "every stack mapped for a task is back in the pool"
            );
        })
        .join()
        .expect("the test thread");
    }

    #[test]
    fn a_deadlock_is_reported_and_the_parked_tasks_are_dropped() {
        std::thread::spawn(|| {
            let drops = Rc::new(Cell::new(0));
            let tasks = 5;
            // Each task holds the sender of its right neighbour's channel and waits on its own:
            // nobody ever sends.
            let channels: Vec<_> = (0..tasks).map(|_| channel::<()>()).collect();
            let (senders, receivers): (Vec<_>, Vec<_>) = channels.into_iter().unzip();
            let mut senders: VecDeque<_> = senders.into();
            senders.rotate_left(1);
            for (tx, rx) in senders.into_iter().zip(receivers) {
                let guard = DropCounter(drops.clone());
                spawn(move || {
                    let _guard = guard;
                    let _tx = tx;
                    let _ = rx.recv();
                    unreachable!("nobody sends");
                });
            }
            assert_eq!(run(), Err(Deadlock { parked: tasks }));
            assert_eq!(drops.get(), tasks as u32, "the parked tasks' locals were dropped");
            let stats = machine::stats();
            assert_eq!(stats.coroutine_stacks_pooled, stats.coroutine_stacks_mapped);
            // The scheduler is usable again afterwards.
            let ran = Rc::new(Cell::new(false));
            let flag = ran.clone();
            spawn(move || flag.set(true));
            assert_eq!(run(), Ok(()));
            assert!(ran.get());
        })
        .join()
        .expect("the test thread");
    }

    #[test]
    fn yield_now_interleaves_tasks_round_robin() {
        let log = Rc::new(RefCell::new(Vec::new()));
        for name in ['a', 'b', 'c'] {
            let log = log.clone();
            spawn(move || {
                for i in 0..3 {
                    log.borrow_mut().push(format!("{name}{i}"));
                    yield_now();
                }
            });
        }
        run().unwrap();
        assert_eq!(log.borrow().join(" "), "a0 b0 c0 a1 b1 c1 a2 b2 c2");
    }

    #[test]
    fn recv_returns_none_once_every_sender_is_gone() {
        let (tx, rx) = channel::<u8>();
        let got = Rc::new(RefCell::new(Vec::new()));
        let out = got.clone();
        spawn(move || {
            while let Some(v) = rx.recv() {
                out.borrow_mut().push(v);
            }
        });
        spawn(move || {
            for v in 0..3 {
                tx.send(v);
                yield_now();
            }
        });
        run().unwrap();
        assert_eq!(*got.borrow(), [0, 1, 2]);
    }

    #[test]
    fn a_panicking_task_panics_run_after_dropping_the_others() {
        std::thread::spawn(|| {
            let drops = Rc::new(Cell::new(0));
            let guard = DropCounter(drops.clone());
            let (_tx, rx) = channel::<()>();
            spawn(move || {
                let _guard = guard;
                let _ = rx.recv();
            });
            spawn(|| std::panic::panic_any(42_i32));
            let payload = catch_unwind(run).unwrap_err();
            assert_eq!(payload.downcast_ref::<i32>(), Some(&42));
            assert_eq!(drops.get(), 1);
            let stats = machine::stats();
            assert_eq!(stats.coroutine_stacks_pooled, stats.coroutine_stacks_mapped);
        })
        .join()
        .expect("the test thread");
    }
}
