//! kill -9 in the middle of a campaign, for real: `loa serve` runs as its own process against the
//! test's database and a Kannel double, is killed with SIGKILL while sending, and a second process
//! finishes the job. Counted at the gateway: nobody lost, nobody given two ids, and the sends
//! repeated after the crash bounded by `dispatch.concurrency` (outcomes hold their send slot until
//! they are committed; before, outcomes waiting in memory buffers were re-sent by the hundred).

mod common;

use std::time::Duration;

use common::kannel_double::KannelDouble;
use common::*;

const CONCURRENCY: usize = 8;

#[tokio::test]
async fn kill_9_mid_campaign_repeats_at_most_what_was_in_flight() {
    let (server, double) = KannelDouble::default().start().await;
    // This process only prepares the campaign and reads progress: no dispatcher of its own.
    let app = spawn_app_with(
        |cfg, _| {
            common::kannel_double::kannel_provider(cfg, &server.uri(), None, None);
        },
        false,
    )
    .await;
    let t = tree(&app).await;
    let n = 400;
    parents_with_children(&app, &t, n).await;
    let tpl = template(&app, t.school).await;
    let c = campaign(&app, t.school, tpl, &["parent"], &["sms"]).await;
    app.start(c).await;
    app.wait_fanned_out(c, n).await;

    let db = app.cfg.database.url.clone();
    let mut first =
        common::serve::serve(app.dir.path(), "crash", &db, &server.uri(), CONCURRENCY, "");
    wait_for(Duration::from_secs(30), || async {
        (double.sent().len() >= 120).then_some(())
    })
    .await
    .expect("the first process sends");
    first.kill().expect("SIGKILL");
    first.wait().unwrap();
    let at_kill = double.sent().len();
    assert!(at_kill < n, "killed mid-campaign ({at_kill} of {n} sent)");

    let mut second =
        common::serve::serve(app.dir.path(), "crash", &db, &server.uri(), CONCURRENCY, "");
    let done = wait_for(Duration::from_secs(60), || async {
        let (_, p) = app.get(&format!("/api/v1/campaigns/{c}/progress")).await;
        (p["progress"]["by_state"]["sent"] == n).then_some(())
    })
    .await;
    second.kill().ok();
    second.wait().ok();
    done.expect("the second process finishes the campaign");

    let repeats = double.assert_each_once_by_id(n);
    eprintln!("kill -9 after {at_kill} sends: {repeats} sent again (concurrency {CONCURRENCY})");
    assert!(
        repeats <= CONCURRENCY + 2,
        "{repeats} sends repeated after one kill -9; at most the {CONCURRENCY} in flight may be"
    );
    app.stop().await;
}
