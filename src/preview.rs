//! Cost and reach before anyone presses send: who the audience holds, which channel reaches each
//! person by the campaign's order and the addresses Loa has, who is skipped and why, SMS segments
//! with and without accents, the estimated cost per channel, and each channel's text for a sample
//! person. Nothing is written.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::Serialize;

use crate::config::Prices;
use crate::domain::Channel;
use crate::domain::campaign::Campaign;
use crate::domain::channel_choice::{ChannelChoice, choose_channel};
use crate::domain::phone::carrier;
use crate::render::sms::{shape, unaccent};
use crate::render::{CompiledTemplate, PersonVars, sample_person};
use crate::store::{AudiencePerson, Store};

#[derive(Clone, Debug, Default, Serialize)]
pub struct ChannelReach {
    pub people: u64,
    /// SMS only: parts as they will be sent (unaccented if the provider requires it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub segments: Option<u64>,
    /// SMS only: parts if sent with diacritics, and without, to show what accents cost.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub segments_with_accents: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub segments_without_accents: Option<u64>,
    /// SMS only: people by mobile network.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub by_carrier: BTreeMap<String, u64>,
    pub cost: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Sample {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    pub text: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Preview {
    pub people: u64,
    pub by_channel: BTreeMap<&'static str, ChannelReach>,
    /// Reason code -> people nobody can reach (`opted_out` are skipped, `no_address` fail).
    pub unreachable: BTreeMap<&'static str, u64>,
    pub currency: &'static str,
    pub total_cost: f64,
    pub samples: BTreeMap<&'static str, Sample>,
    /// How long the preview took, for the record.
    pub took_ms: u64,
}

const BATCH: usize = 2048;

/// SMS parts and cost of a batch of people.
#[derive(Default)]
struct SmsTally {
    sent: u64,
    with: u64,
    without: u64,
    cost: f64,
}

fn sms_tally(
    t: &CompiledTemplate,
    people: Vec<(PersonVars, Option<&'static str>)>,
    sms_unaccent: bool,
    prices: &Prices,
) -> SmsTally {
    let mut out = SmsTally::default();
    for (vars, network) in people {
        let text = t
            .render(
                Channel::Sms,
                &vars,
                "https://loa.invalid/u/0123456789abcdef",
            )
            .map(|r| r.text)
            .unwrap_or_default();
        let with = u64::from(shape(&text).segments);
        let without = u64::from(shape(&unaccent(&text)).segments);
        let sent = if sms_unaccent { without } else { with };
        out.sent += sent;
        out.with += with;
        out.without += without;
        out.cost += sent as f64 * prices.sms_segment_for(network);
    }
    out
}

/// Computes the preview of a campaign; `sms_unaccent` says whether the SMS provider sends without
/// diacritics. The SMS of every person is rendered to count its real parts (names differ in length).
pub async fn preview(
    store: &dyn Store,
    c: &Campaign,
    sms_unaccent: bool,
    prices: &Prices,
) -> anyhow::Result<Preview> {
    let started = std::time::Instant::now();
    let org = store.get_org(c.org_id).await?;
    let template = store.get_template(c.template_id).await?;
    let compiled = CompiledTemplate::compile(&template.bodies, &org.name, &c.name)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    // Names of the schools people are reached through, loaded once: the audience is then read as a
    // stream and never held in memory, whatever its size.
    let root = store.get_org(c.audience.org_id).await?;
    let schools: HashMap<i64, String> = store
        .list_orgs(None)
        .await?
        .into_iter()
        .filter(|o| o.path.starts_with(&root.path) || root.path.starts_with(&o.path))
        .map(|o| (o.id, o.name))
        .collect();
    let mut by_channel: BTreeMap<&'static str, ChannelReach> = BTreeMap::new();
    let mut unreachable: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut count = 0u64;
    // SMS texts are rendered in batches on blocking threads while the store is still reading the
    // audience: on two cores that halves the preview of a large audience.
    let compiled = Arc::new(compiled);
    let mut batch: Vec<(PersonVars, Option<&'static str>)> = Vec::new();
    let mut parts: Vec<tokio::task::JoinHandle<SmsTally>> = Vec::new();
    let mut tally = |p: AudiencePerson| {
        count += 1;
        match choose_channel(&c.channels, 0, &p.addresses, p.opt_out) {
            ChannelChoice::None(reason) => *unreachable.entry(reason.as_str()).or_default() += 1,
            ChannelChoice::Use { channel, .. } => {
                let reach = by_channel.entry(channel.as_str()).or_default();
                reach.people += 1;
                if channel != Channel::Sms {
                    reach.cost += prices.per_message(channel);
                    return;
                }
                let network = p.addresses.phone.as_deref().and_then(carrier);
                *reach
                    .by_carrier
                    .entry(network.unwrap_or("unknown").to_string())
                    .or_default() += 1;
                batch.push((
                    PersonVars {
                        school: schools.get(&p.org_id).cloned().unwrap_or_default(),
                        name: p.name,
                        students: p.students,
                        classes: p.classes,
                    },
                    network,
                ));
                if batch.len() == BATCH {
                    let work = std::mem::take(&mut batch);
                    let (t, pr) = (compiled.clone(), prices.clone());
                    parts.push(tokio::task::spawn_blocking(move || {
                        sms_tally(&t, work, sms_unaccent, &pr)
                    }));
                }
            }
        }
    };
    store.audience(c, &mut tally).await?;
    if !batch.is_empty() {
        let (t, pr) = (compiled.clone(), prices.clone());
        parts.push(tokio::task::spawn_blocking(move || {
            sms_tally(&t, batch, sms_unaccent, &pr)
        }));
    }
    for part in parts {
        let t = part.await?;
        let reach = by_channel.entry(Channel::Sms.as_str()).or_default();
        *reach.segments.get_or_insert(0) += t.sent;
        *reach.segments_with_accents.get_or_insert(0) += t.with;
        *reach.segments_without_accents.get_or_insert(0) += t.without;
        reach.cost += t.cost;
    }
    let mut samples = BTreeMap::new();
    for ch in &c.channels {
        if let Ok(r) = compiled.render(*ch, &sample_person(), "https://loa.invalid/u/mau") {
            let text = if *ch == Channel::Sms && sms_unaccent {
                unaccent(&r.text)
            } else {
                r.text
            };
            samples.insert(
                ch.as_str(),
                Sample {
                    subject: r.subject,
                    text,
                },
            );
        }
    }
    let total_cost = by_channel.values().map(|r| r.cost).sum();
    Ok(Preview {
        people: count,
        by_channel,
        unreachable,
        currency: "VND",
        total_cost,
        samples,
        took_ms: started.elapsed().as_millis() as u64,
    })
}
