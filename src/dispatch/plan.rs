//! Per-run send plan (channel order + compiled template + quiet hours), built once and shared by every
//! delivery of the run, and the step that turns a claimed delivery into a provider message. Runs of a
//! recurring series each send their own template.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use providers::{Channel, Message, Unsubscribe};

use super::decide::Attempt;
use super::registry::Registry;
use crate::domain::delivery::Reason;
use crate::domain::schedule::QuietHours;
use crate::links::Links;
use crate::render::sms::{shape, unaccent};
use crate::render::{CompiledTemplate, PersonVars};
use crate::store::{Claimed, Store};

pub struct Plan {
    pub channels: Vec<Channel>,
    pub messenger_tag: Option<String>,
    pub template: CompiledTemplate,
    /// The sending node's quiet hours, unless the campaign is urgent.
    pub quiet: Option<QuietHours>,
}

#[derive(Default)]
pub struct Plans {
    cache: Mutex<HashMap<i64, Arc<Plan>>>,
}

impl Plans {
    pub async fn get(
        &self,
        store: &dyn Store,
        default_quiet: Option<QuietHours>,
        campaign_id: i64,
        run_id: i64,
    ) -> Result<Arc<Plan>, String> {
        if let Some(p) = self.cache.lock().ok().and_then(|c| c.get(&run_id).cloned()) {
            return Ok(p);
        }
        let campaign = store
            .get_campaign(campaign_id)
            .await
            .map_err(|e| e.to_string())?;
        let template_id = store
            .run_template(run_id)
            .await
            .map_err(|e| e.to_string())?
            .unwrap_or(campaign.template_id);
        let template = store
            .get_template(template_id)
            .await
            .map_err(|e| e.to_string())?;
        let quiet = if campaign.urgent {
            None
        } else {
            match store
                .effective_quiet_hours(campaign.org_id)
                .await
                .map_err(|e| e.to_string())?
            {
                // Stored values were checked when set; an empty one switches quiet hours off.
                Some(q) => q.parse().ok(),
                None => default_quiet,
            }
        };
        let org = store
            .get_org(campaign.org_id)
            .await
            .map_err(|e| e.to_string())?;
        let compiled = CompiledTemplate::compile(&template.bodies, &org.name, &campaign.name)
            .map_err(|e| e.to_string())?;
        let plan = Arc::new(Plan {
            channels: campaign.channels,
            messenger_tag: campaign.messenger_tag,
            template: compiled,
            quiet,
        });
        if let Ok(mut c) = self.cache.lock() {
            c.insert(run_id, plan.clone());
        }
        Ok(plan)
    }
}

/// Renders and shapes one delivery for its current channel (for the route `registry` gives it), or
/// says why it cannot go on that channel.
pub fn prepare(
    d: &Claimed,
    plan: &Plan,
    registry: &Registry,
    links: &Links,
) -> Result<Message, Attempt> {
    let unsendable = |reason, detail: String| Attempt::Unsendable { reason, detail };
    let channel = d
        .channel
        .ok_or_else(|| unsendable(Reason::NoAddress, "no channel".into()))?;
    if d.channel_skipped {
        return Err(unsendable(
            Reason::ChannelSkipped,
            format!("{channel} skipped for this campaign by staff"),
        ));
    }
    let route = registry.route(channel).ok_or_else(|| {
        unsendable(
            Reason::ChannelUnavailable,
            format!("no provider configured for {channel}"),
        )
    })?;
    let to = d
        .addresses
        .for_channel(channel)
        .ok_or_else(|| unsendable(Reason::NoAddress, format!("no {channel} address")))?
        .to_string();
    let vars: PersonVars = serde_json::from_str(&d.vars).map_err(|e| {
        unsendable(
            Reason::RenderFailed,
            format!("stored variables unreadable: {e}"),
        )
    })?;
    // Email always carries it (List-Unsubscribe); other channels only where the text shows it: an
    // HMAC for a link nobody reads would be paid on every message.
    let unsubscribe_url = d
        .contact_id
        .filter(|_| channel == Channel::Email || plan.template.shows_unsubscribe(channel))
        .map(|id| links.unsubscribe(id, channel))
        .unwrap_or_default();
    let rendered = plan
        .template
        .render(channel, &vars, &unsubscribe_url)
        .map_err(|e| unsendable(Reason::RenderFailed, e))?;
    let mut msg = Message {
        subject: rendered.subject,
        html: rendered.html,
        zns: match (rendered.zns, &plan.template.zns) {
            (Some(data), Some(t)) => Some(providers::ZnsData {
                template_id: t.template_id.clone(),
                data,
            }),
            _ => None,
        },
        zalo_transaction: rendered.zalo_transaction,
        // Only Messenger reads it: no allocation on the other channels' sends.
        messenger_tag: if channel == Channel::Messenger {
            plan.messenger_tag.clone()
        } else {
            None
        },
        ..Message::new(d.id.to_string(), channel, to, rendered.text)
    };
    match channel {
        Channel::Sms => {
            if route.unaccent {
                msg.text = unaccent(&msg.text);
            }
            let s = shape(&msg.text);
            if let Some(max) = route.max_segments
                && s.segments > max
            {
                return Err(unsendable(
                    Reason::MessageTooLong,
                    format!("SMS needs {} parts, the provider allows {max}", s.segments),
                ));
            }
            msg.sms = Some(s);
        }
        Channel::Email if !unsubscribe_url.is_empty() => {
            msg.unsubscribe = Some(Unsubscribe {
                url: unsubscribe_url,
                mailto: links.unsubscribe_mailto.clone(),
            });
        }
        _ => {}
    }
    if route.wants_callback {
        let at = crate::domain::delivery::AttemptRef {
            channel_index: d.channel_index,
            attempt: d.attempts + 1,
        };
        msg.callback_url = Some(links.sms_report(route.provider.name(), d.id, at));
    }
    Ok(msg)
}
