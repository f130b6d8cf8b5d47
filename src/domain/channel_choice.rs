//! Which channel reaches a person: the first in the campaign's order with an address and no opt-out.

use super::Channel;
use super::contact::{Addresses, OptOuts};
use super::delivery::Reason;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChannelChoice {
    Use {
        index: usize,
        channel: Channel,
    },
    /// Nothing usable from `from` onward. `OptedOut` when every channel with an address was refused by
    /// the person (skipped), `NoAddress` when none had an address (failed).
    None(Reason),
}

/// Looks at `order[from..]`. A channel opted out of is passed over even if it has an address.
pub fn choose_channel(
    order: &[Channel],
    from: usize,
    addr: &Addresses,
    opt: OptOuts,
) -> ChannelChoice {
    let mut saw_opt_out = false;
    for (index, &channel) in order.iter().enumerate().skip(from) {
        if addr.for_channel(channel).is_none() {
            continue;
        }
        if opt.contains(channel) {
            saw_opt_out = true;
            continue;
        }
        return ChannelChoice::Use { index, channel };
    }
    ChannelChoice::None(if saw_opt_out {
        Reason::OptedOut
    } else {
        Reason::NoAddress
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use Channel::*;

    fn addr(phone: bool, email: bool, zalo: bool) -> Addresses {
        Addresses {
            phone: phone.then(|| "+84912345678".into()),
            email: email.then(|| "a@b.vn".into()),
            zalo_user_id: zalo.then(|| "123".into()),
            facebook_psid: None,
        }
    }

    #[test]
    fn first_reachable_in_order() {
        let order = [Zalo, Sms, Email];
        assert_eq!(
            choose_channel(&order, 0, &addr(true, true, true), OptOuts(0)),
            ChannelChoice::Use {
                index: 0,
                channel: Zalo
            }
        );
        assert_eq!(
            choose_channel(&order, 0, &addr(true, true, false), OptOuts(0)),
            ChannelChoice::Use {
                index: 1,
                channel: Sms
            }
        );
        assert_eq!(
            choose_channel(&order, 2, &addr(true, true, true), OptOuts(0)),
            ChannelChoice::Use {
                index: 2,
                channel: Email
            }
        );
    }

    #[test]
    fn opt_out_passes_over_a_channel() {
        let opt = OptOuts::default().with(Zalo, true);
        assert_eq!(
            choose_channel(&[Zalo, Sms], 0, &addr(true, false, true), opt),
            ChannelChoice::Use {
                index: 1,
                channel: Sms
            }
        );
    }

    #[test]
    fn nothing_left() {
        let all_out = OptOuts::default().with(Sms, true).with(Email, true);
        assert_eq!(
            choose_channel(&[Sms, Email], 0, &addr(true, true, false), all_out),
            ChannelChoice::None(Reason::OptedOut)
        );
        assert_eq!(
            choose_channel(&[Zalo, Messenger], 0, &addr(true, true, false), OptOuts(0)),
            ChannelChoice::None(Reason::NoAddress)
        );
        assert_eq!(
            choose_channel(&[Sms], 1, &addr(true, true, true), OptOuts(0)),
            ChannelChoice::None(Reason::NoAddress)
        );
    }
}
