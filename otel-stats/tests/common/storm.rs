//! A storm of RPCs of every kind, with random client cancellations, deadlines, streams
//! dropped midway and services that panic.

use std::time::Duration;

use tokio::task::JoinSet;
use tokio_stream::StreamExt;

use super::{Client, req};

/// A small deterministic generator (xorshift), so a failure can be replayed.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

pub async fn one_rpc(mut client: Client, choice: u64) {
    let cut = Duration::from_micros(choice % 3_000);
    let _ = match choice % 7 {
        0 => client.unary_echo(req("hello")).await.map(drop),
        1 => {
            // Cancelled while the server sleeps, or not, depending on the cut.
            let _ = tokio::time::timeout(cut, client.unary_echo(req("sleep:2"))).await;
            Ok(())
        }
        2 => {
            let mut request = tonic::Request::new(req("sleep:20"));
            request.set_timeout(Duration::from_millis(1 + choice % 5));
            client.unary_echo(request).await.map(drop)
        }
        3 => {
            // A server stream dropped after a few messages.
            if let Ok(response) = client.server_streaming_echo(req("count:50")).await {
                let mut stream = response.into_inner();
                for _ in 0..(choice % 60) {
                    if stream.message().await.ok().flatten().is_none() {
                        break;
                    }
                }
            }
            Ok(())
        }
        6 => client.unary_echo(req("panic")).await.map(drop),
        4 => {
            let messages = tokio_stream::iter((0..choice % 8).map(|i| req(&i.to_string())))
                .throttle(Duration::from_micros(200));
            let _ = tokio::time::timeout(cut, client.client_streaming_echo(messages)).await;
            Ok(())
        }
        _ => {
            let messages = tokio_stream::iter((0..5).map(|i| req(&i.to_string())));
            let call = async {
                let mut replies = client
                    .bidirectional_streaming_echo(messages)
                    .await?
                    .into_inner();
                while replies.message().await?.is_some() {}
                Ok::<_, tonic::Status>(())
            };
            let _ = tokio::time::timeout(cut, call).await;
            Ok(())
        }
    };
}

/// Sends `n` RPCs chosen by a generator seeded with `seed`, over `clients` in turn, at most
/// `concurrency` at a time, and waits for all of them.
pub async fn storm(clients: &[Client], n: u64, concurrency: usize, seed: u64) {
    let mut rng = Rng(seed);
    let mut running = JoinSet::new();
    for i in 0..n {
        if running.len() >= concurrency {
            running.join_next().await.unwrap().unwrap();
        }
        let client = clients[i as usize % clients.len()].clone();
        running.spawn(one_rpc(client, rng.next()));
    }
    while let Some(done) = running.join_next().await {
        done.unwrap();
    }
}
