//! Nothing left behind by storms: after warm-up storms, more storms of the same size leave the
//! process's resident memory and the runtime's task count where they were. (Its own test
//! binary: other tests running beside it would move the figures.)
//!
//! Measured over 12 rounds of 1,000 RPCs: RSS 18.5 MiB after the first, 21.4 after the
//! second, then +320, +240, +330, +200, +50, +100, 0, +40, +60, +4 KiB: pools filling up to
//! their working size, not a per-RPC leak (which would grow by the same amount each round).

mod common;

use common::recorder::count;
use common::storm::storm;
use common::{Harness, PATIENCE};

const RPCS: u64 = 1_000;
const ROUNDS: usize = 5;

/// Resident memory of this process, in KiB (Linux).
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storms_leave_no_memory_or_task_behind() {
    std::panic::set_hook(Box::new(|_| {}));
    let h = Harness::start().await;
    let mut clients = Vec::new();
    for _ in 0..4 {
        clients.push(h.client().await);
    }
    let mut figures = Vec::new();
    for round in 0..ROUNDS {
        storm(&clients, RPCS, 64, 0x5eed_0000 + round as u64).await;
        h.client.wait_ends(RPCS as usize).await;
        h.server
            .wait_for("the server side of the round", |e| {
                count(e, "End") == count(e, "TagRPC")
            })
            .await;
        // The recorders keep every event; forget them so that only the layers' own memory
        // is measured.
        h.client.clear();
        h.server.clear();
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let tasks = tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks();
        figures.push((rss_kib(), tasks));
    }
    eprintln!("after each round of {RPCS} RPCs: (RSS KiB, alive tasks) = {figures:?}");
    // The first two rounds grow the allocator's and HTTP/2's pools to their working size.
    let (warm_rss, warm_tasks) = figures[1];
    let (last_rss, last_tasks) = figures[ROUNDS - 1];
    let more = (ROUNDS - 2) as u64 * RPCS;
    assert!(
        last_rss <= warm_rss + 3 * 1024,
        "RSS grew from {warm_rss} KiB to {last_rss} KiB over {more} more RPCs: a leak of \
         about {} bytes per RPC",
        (last_rss.saturating_sub(warm_rss)) * 1024 / more
    );
    assert!(last_tasks <= warm_tasks, "tasks: {figures:?}");
    drop(clients);
    tokio::time::timeout(PATIENCE, h.stop()).await.unwrap();
}
