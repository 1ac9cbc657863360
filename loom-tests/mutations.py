#!/usr/bin/env python3
"""The loom models' non-vacuity check: for each mutation below, apply it to the source, build
the loom models, run the model it names, record whether that model FAILED (the expected
outcome), and restore the file.

    python3 loom-tests/mutations.py            # every mutation (about 30 minutes on 2 cores)
    python3 loom-tests/mutations.py M8 M13     # only those whose name starts with these

It edits files of the checkout it sits in (each restored after its run, also on Ctrl-C), so run
it on a clean tree you are not editing. Builds go to target/loom-mutants. Each model's doc
comment says which of these mutations fails it and how.
"""
import subprocess, sys, os, time
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = dict(os.environ, RUSTFLAGS="--cfg loom", CARGO_TARGET_DIR=f"{ROOT}/target/loom-mutants")
MUTATIONS = [
 ('M1 consumer freed store Relaxed (pop_ready)',
  [
   ('core/src/raw.rs',
    '        self.counters\n            .cons\n            .freed\n            .store(cursor.head, Ordering::Release);\n        Some(value)',
    '        self.counters\n            .cons\n            .freed\n            .store(cursor.head, Ordering::Relaxed);\n        Some(value)'),
  ],
  ['ring', 'two_producers_and_consumer_n2_wrap']),
 ("M2 producers' limit store Relaxed",
  [
   ('core/src/raw.rs',
    'prod.limit.store(limit, Ordering::Release);',
    'prod.limit.store(limit, Ordering::Relaxed);'),
  ],
  ['ring', 'two_producers_and_consumer_n2_wrap']),
 ("M3 producers' limit load Relaxed",
  [
   ('core/src/raw.rs',
    'let mut limit = prod.limit.load(Ordering::Acquire);',
    'let mut limit = prod.limit.load(Ordering::Relaxed);'),
  ],
  ['ring', 'two_producers_and_consumer_n2_wrap']),
 ('M4 publish stamp Relaxed',
  [
   ('core/src/raw.rs',
    'slot.stamp.store(tick | 1, Ordering::Release);',
    'slot.stamp.store(tick | 1, Ordering::Relaxed);'),
  ],
  ['ring', 'two_producers_and_consumer_n2_wrap']),
 ('M5 evict_claimed takes without winning head',
  [
   ('core/src/raw.rs',
    '                Ordering::Relaxed,\n                Ordering::Relaxed,\n            )\n            .is_ok()\n        {\n            let slot = self.slot(tick);',
    '                Ordering::Relaxed,\n                Ordering::Relaxed,\n            )\n            .map_or(true, |_| true)\n        {\n            let slot = self.slot(tick);'),
  ],
  ['ring', 'force_push_races_pop']),
 ('M6 evict_claimed does not wait for freed',
  [
   ('core/src/raw.rs',
    '        while !before(old, cons.freed.load(Ordering::Acquire)) {\n            spin_loop();\n        }\n        // SAFETY: we own `tick`, and `old` was moved out before `freed` passed it.',
    '        // SAFETY: we own `tick`, and `old` was moved out before `freed` passed it.'),
  ],
  ['ring', 'force_push_races_pop']),
 ('M7 claim_run freed store Relaxed',
  [
   ('core/src/raw.rs',
    '                    cons.freed.store(cursor.head, Ordering::Release);\n                    self.note_yielded(cursor);',
    '                    cons.freed.store(cursor.head, Ordering::Relaxed);\n                    self.note_yielded(cursor);'),
  ],
  ['ring', 'force_push_races_pop']),
 ('M8 step_over_evicted does not move freed',
  [
   ('core/src/raw.rs',
    '        cons.freed.store(to, Ordering::Release);\n        // Relaxed: a snapshot for `len` (the staging buffer is empty here).',
    '        // Relaxed: a snapshot for `len` (the staging buffer is empty here).'),
  ],
  ['ring', 'evictions_are_counted_once_across_a_hand_off']),
 ('M9 release_consumer Relaxed',
  [
   ('core/src/raw.rs',
    'self.counters.cons.consumer.store(false, Ordering::Release);',
    'self.counters.cons.consumer.store(false, Ordering::Relaxed);'),
  ],
  ['ring', 'consumer_claim_race']),
 ('M10 claims ignore the closed flag (fetch_add claim)',
  [
   ('core/src/raw.rs',
    '            match prod.tail.compare_exchange_weak(\n                tail,\n                tail.wrapping_add(TICK),\n                order.ordering(),\n                Ordering::Relaxed,\n            ) {',
    '            match Ok::<usize, usize>(prod.tail.fetch_add(TICK, order.ordering()) & !CLOSED) {'),
  ],
  ['ring', 'close_races_a_claim']),
 ('M10b claims ignore the closed flag (writer)',
  [
   ('core/src/raw.rs',
    '            match prod.tail.compare_exchange_weak(\n                tail,\n                tail.wrapping_add(TICK),\n                order.ordering(),\n                Ordering::Relaxed,\n            ) {',
    '            match Ok::<usize, usize>(prod.tail.fetch_add(TICK, order.ordering()) & !CLOSED) {'),
  ],
  ['writer', 'close_excludes_late_pushes']),
 ("M11b no fence after the ring's close, neither core's nor the notifications'",
  [
   ('std-writer/src/signal.rs',
    '        let end = close_ring();\n        self.space.notify();\n        self.flushed.notify();',
    '        let end = close_ring();'),
   ('core/src/raw.rs',
    '        #[cfg(loom)]\n        crate::sync::fence(Ordering::SeqCst);\n        (tail & !CLOSED) >> 1',
    '        (tail & !CLOSED) >> 1'),
  ],
  ['writer', 'a_refusal_before_close_is_counted_by_the_closing_writer']),
 ('M12 no loom fence after the refusal count',
  [
   ('std-writer/src/signal.rs',
    '        self.rejected[stripe].fetch_add(1, Ordering::SeqCst);\n        #[cfg(loom)]\n        fence(Ordering::SeqCst);',
    '        self.rejected[stripe].fetch_add(1, Ordering::SeqCst);'),
  ],
  ['writer', 'a_refusal_before_close_is_counted_by_the_closing_writer']),
 ('M13 no loom fence after the SeqCst claim',
  [
   ('core/src/raw.rs',
    '                    #[cfg(loom)]\n                    if order == ClaimOrder::SeqCst {',
    '                    #[cfg(any())]\n                    if order == ClaimOrder::SeqCst {'),
  ],
  ['writer', 'parked_writer_sees_racing_push']),
 ('M14 no fence in prepare_sleep',
  [
   ('std-writer/src/signal.rs',
    '        let prev = self.state.fetch_or(SLEEPING, Ordering::SeqCst);\n        // Pairs with the fence in `request_flush`; under loom, also with the fence after an\n        // emitter\'s claim (module docs, "Under loom").\n        fence(Ordering::SeqCst);',
    '        let prev = self.state.fetch_or(SLEEPING, Ordering::SeqCst);'),
  ],
  ['writer', 'parked_writer_sees_racing_push']),
 ('M15 Signal::pushed never wakes',
  [
   ('std-writer/src/signal.rs',
    '        if self.state.load(Ordering::SeqCst) & SLEEPING != 0 {\n            self.wake_writer();\n        }\n    }',
    '        if self.state.load(Ordering::SeqCst) & SLEEPING != 0 && false {\n            self.wake_writer();\n        }\n    }'),
  ],
  ['writer', 'parked_writer_sees_racing_push']),
 ('M16 solo push writes into a full ring',
  [
   ('core/src/raw.rs',
    '                    None => return Err(value),\n                }\n                break;',
    '                    None => {}\n                }\n                break;'),
  ],
  ['ring', 'solo_producer_against_consumer_across_the_wrap']),
 ('M17 try_pop says Empty without the tail check',
  [
   ('core/src/raw.rs',
    '                Err(if self.tail_tick() == cursor.head {',
    '                Err(if true {'),
  ],
  ['ring', 'ring_pop_waits_out_a_pending_push_and_try_pop_says_pending']),
 ('M18 claim_consumer Relaxed',
  [
   ('core/src/raw.rs',
    '            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)',
    '            .compare_exchange(false, true, Ordering::Relaxed, Ordering::Relaxed)'),
  ],
  ['ring', 'consumer_claim_race']),
 ('M19 nudge does nothing for a polled writer',
  [
   ('std-writer/src/signal.rs',
    '    pub fn nudge(&self) {\n        if self.polled {',
    '    pub fn nudge(&self) {\n        if self.polled && false {'),
  ],
  ['writer', 'polled_writer_serves_a_blocked_emitter']),
 ('M20 evict_claimed evicts the wrong slot (old one position late)',
  [
   ('core/src/raw.rs',
    '    unsafe fn evict_claimed(&self, tick: usize, value: T) -> Option<T> {\n        let cons = &*self.counters.cons;\n        let old = tick.wrapping_sub(self.span());',
    '    unsafe fn evict_claimed(&self, tick: usize, value: T) -> Option<T> {\n        let cons = &*self.counters.cons;\n        let old = tick.wrapping_sub(self.span()).wrapping_add(TICK);'),
  ],
  ['ring', 'force_push_races_force_push']),
 ('M21 stepping over evictions counts nothing',
  [
   ('core/src/raw.rs',
    '        cursor.evicted += (to.wrapping_sub(from) >> 1) as u64;',
    '        let _ = from;'),
  ],
  ['ring', 'force_push_stream_against_consumer']),
 ('M21b stepping over evictions counts nothing (solo)',
  [
   ('core/src/raw.rs',
    '        cursor.evicted += (to.wrapping_sub(from) >> 1) as u64;',
    '        let _ = from;'),
  ],
  ['ring', 'solo_force_push_against_consumer']),
 ('M22 drop skips staged values',
  [
   ('core/src/raw.rs',
    '        while let Some(v) = unsafe { self.staging.pop() } {\n            drop(v);\n        }',
    '        while let Some(v) = unsafe { self.staging.pop() } {\n            core::mem::forget(v);\n        }'),
  ],
  ['ring', 'drop_with_values_inside']),
 ("M23 a run's rest is not staged (lost)",
  [
   ('core/src/raw.rs',
    '                    if run > 1 {\n',
    '                    if run > 1 && false {\n'),
  ],
  ['ring', 'staged_values_survive_a_hand_off_racing_force_push']),
 ('M1b consumer freed store Relaxed (full ring race)',
  [
   ('core/src/raw.rs',
    '        self.counters\n            .cons\n            .freed\n            .store(cursor.head, Ordering::Release);\n        Some(value)',
    '        self.counters\n            .cons\n            .freed\n            .store(cursor.head, Ordering::Relaxed);\n        Some(value)'),
  ],
  ['ring', 'try_push_on_full_races_pop']),
 ('M17b try_pop Empty without the tail check (channel)',
  [
   ('core/src/raw.rs',
    '                Err(if self.tail_tick() == cursor.head {',
    '                Err(if true {'),
  ],
  ['ring', 'channel_pop_waits_out_a_pending_push_and_try_pop_says_pending']),
 ('M10c claims ignore the closed flag (evicting)',
  [
   ('core/src/raw.rs',
    '            match prod.tail.compare_exchange_weak(\n                tail,\n                tail.wrapping_add(TICK),\n                order.ordering(),\n                Ordering::Relaxed,\n            ) {',
    '            match Ok::<usize, usize>(prod.tail.fetch_add(TICK, order.ordering()) & !CLOSED) {'),
  ],
  ['ring', 'close_races_an_evicting_claim']),
 ('M10d claims ignore the closed flag (two emitters)',
  [
   ('core/src/raw.rs',
    '            match prod.tail.compare_exchange_weak(\n                tail,\n                tail.wrapping_add(TICK),\n                order.ordering(),\n                Ordering::Relaxed,\n            ) {',
    '            match Ok::<usize, usize>(prod.tail.fetch_add(TICK, order.ordering()) & !CLOSED) {'),
  ],
  ['writer', 'close_excludes_late_pushes_from_two_emitters']),
 ('M10e claims ignore the closed flag (evicting emit)',
  [
   ('core/src/raw.rs',
    '            match prod.tail.compare_exchange_weak(\n                tail,\n                tail.wrapping_add(TICK),\n                order.ordering(),\n                Ordering::Relaxed,\n            ) {',
    '            match Ok::<usize, usize>(prod.tail.fetch_add(TICK, order.ordering()) & !CLOSED) {'),
  ],
  ['writer', 'close_excludes_late_evicting_pushes']),
 ('M13b no loom fence after the SeqCst claim (two emitters)',
  [
   ('core/src/raw.rs',
    '                    #[cfg(loom)]\n                    if order == ClaimOrder::SeqCst {',
    '                    #[cfg(any())]\n                    if order == ClaimOrder::SeqCst {'),
  ],
  ['writer', 'parked_writer_sees_two_racing_pushes']),
 ('M24 Waiters::wait without its fence',
  [
   ('std-writer/src/signal.rs',
    "        // Pairs with the fence in `notify`: either `ready()` sees the change the notifier made\n        // before its fence, or the notifier's count load sees our registration and it takes\n        // the lock to notify, which it cannot do between our check and our wait.\n        fence(Ordering::SeqCst);",
    ''),
  ],
  ['writer', 'blocked_emitter_sees_freed_space']),
 ('M25 request_flush without its fence',
  [
   ('std-writer/src/signal.rs',
    '        // Pairs with the fence in `prepare_sleep`: either the writer sees our target before\n        // parking, or we see SLEEPING and wake it.\n        fence(Ordering::SeqCst);',
    ''),
  ],
  ['writer', 'flush_request_wakes_parked_writer']),
 ('M26 request_stop never wakes a parked writer',
  [
   ('std-writer/src/signal.rs',
    '        } else if prev & SLEEPING != 0 {\n            self.wake_writer();\n        }\n    }',
    '        } else if prev & SLEEPING != 0 && false {\n            self.wake_writer();\n        }\n    }'),
  ],
  ['writer', 'stop_request_wakes_parked_writer']),
 ('M27 request_flush unparks a polled writer only on SLEEPING',
  [
   ('std-writer/src/signal.rs',
    '        if self.polled {\n            // Never SLEEPING: unpark it ourselves (module docs, "A polled writer").\n            self.writer.unpark();\n        } else if self.state.load(Ordering::Relaxed) & SLEEPING != 0 {',
    '        if self.polled && false {\n            // Never SLEEPING: unpark it ourselves (module docs, "A polled writer").\n            self.writer.unpark();\n        } else if self.state.load(Ordering::Relaxed) & SLEEPING != 0 {'),
  ],
  ['writer', 'polled_writer_serves_a_racing_flush']),
 ('M27b request_flush unparks a polled writer only on SLEEPING (emit then flush)',
  [
   ('std-writer/src/signal.rs',
    '        if self.polled {\n            // Never SLEEPING: unpark it ourselves (module docs, "A polled writer").\n            self.writer.unpark();\n        } else if self.state.load(Ordering::Relaxed) & SLEEPING != 0 {',
    '        if self.polled && false {\n            // Never SLEEPING: unpark it ourselves (module docs, "A polled writer").\n            self.writer.unpark();\n        } else if self.state.load(Ordering::Relaxed) & SLEEPING != 0 {'),
  ],
  ['writer', 'polled_writer_serves_an_emit_then_flush']),
 ('M28 request_stop unparks a polled writer only on SLEEPING',
  [
   ('std-writer/src/signal.rs',
    '        if self.polled {\n            // Never SLEEPING: unpark it ourselves (module docs, "A polled writer"). The RMW',
    '        if self.polled && false {\n            // Never SLEEPING: unpark it ourselves (module docs, "A polled writer"). The RMW'),
  ],
  ['writer', 'polled_writer_serves_a_racing_stop']),
 ('M5b evict_claimed takes without winning head (3 threads)',
  [
   ('core/src/raw.rs',
    '                Ordering::Relaxed,\n                Ordering::Relaxed,\n            )\n            .is_ok()\n        {\n            let slot = self.slot(tick);',
    '                Ordering::Relaxed,\n                Ordering::Relaxed,\n            )\n            .map_or(true, |_| true)\n        {\n            let slot = self.slot(tick);'),
  ],
  ['ring', 'force_push_races_pop_and_force_push']),
 ('M4b publish stamp Relaxed (channel)',
  [
   ('core/src/raw.rs',
    'slot.stamp.store(tick | 1, Ordering::Release);',
    'slot.stamp.store(tick | 1, Ordering::Relaxed);'),
  ],
  ['ring', 'channel_two_producers']),
 ('M10f claims ignore the closed flag (stop then close)',
  [
   ('core/src/raw.rs',
    '            match prod.tail.compare_exchange_weak(\n                tail,\n                tail.wrapping_add(TICK),\n                order.ordering(),\n                Ordering::Relaxed,\n            ) {',
    '            match Ok::<usize, usize>(prod.tail.fetch_add(TICK, order.ordering()) & !CLOSED) {'),
  ],
  ['writer', 'stop_then_close_keeps_every_accepted_emit']),
 # ---- the byte ring (core/src/bytes/raw.rs) and a byte writer's handshakes ----
 ('B1 byte claims ignore the closed flag (fetch_add claim)',
  [('core/src/bytes/raw.rs', "            match prod\n                .tail\n                .compare_exchange_weak(tail, end, claim, Ordering::Relaxed)\n            {", "            let prev = prod.tail.fetch_add((pad + span) << 1, claim);\n            tail = prev & !CLOSED;\n            match Ok::<usize, usize>(prev) {")],
  ['byte_ring', 'close_races_a_reservation']),
 ('B1b byte claims ignore the closed flag (writer, committed and discarded)',
  [('core/src/bytes/raw.rs', "            match prod\n                .tail\n                .compare_exchange_weak(tail, end, claim, Ordering::Relaxed)\n            {", "            let prev = prod.tail.fetch_add((pad + span) << 1, claim);\n            tail = prev & !CLOSED;\n            match Ok::<usize, usize>(prev) {")],
  ['byte_writer', 'close_keeps_a_committed_and_skips_a_discarded_reservation']),
 ('B1c byte claims ignore the closed flag (stop then close)',
  [('core/src/bytes/raw.rs', "            match prod\n                .tail\n                .compare_exchange_weak(tail, end, claim, Ordering::Relaxed)\n            {", "            let prev = prod.tail.fetch_add((pad + span) << 1, claim);\n            tail = prev & !CLOSED;\n            match Ok::<usize, usize>(prev) {")],
  ['byte_writer', 'stop_then_close_keeps_every_granted_record']),
 ('B2 byte not_ready reads the closed flag as a reservation',
  [('core/src/bytes/raw.rs',
    "        let tail = self.counters.prod.tail.load(Ordering::Relaxed) & !CLOSED;\n        if tail == position {",
    "        let tail = self.counters.prod.tail.load(Ordering::Relaxed);\n        if tail == position {")],
  ['byte_ring', 'a_refusal_races_close']),
 ('B3 byte discard writes no skip header',
  [('core/src/bytes/raw.rs',
    "        self.header(start)\n            .store(skip_header(span), Ordering::Release);",
    "        let _ = skip_header(span);")],
  ['byte_ring', 'committed_and_discarded_grants_race_close']),
 ('B4 no loom fence after the byte ring\'s SeqCst claim',
  [('core/src/bytes/raw.rs', "                    #[cfg(loom)]\n                    if order == ClaimOrder::SeqCst {\n                        // loom treats SeqCst accesses as AcqRel; the fence is what it models of\n                        // the SeqCst claim (`std-writer/src/signal.rs`, \"Under loom\").\n                        crate::sync::fence(Ordering::SeqCst);\n                    }\n", "")],
  ['byte_writer', 'parked_writer_sees_a_racing_reservation']),
 ('B4b no loom fence after the byte ring\'s SeqCst claim (two emitters)',
  [('core/src/bytes/raw.rs', "                    #[cfg(loom)]\n                    if order == ClaimOrder::SeqCst {\n                        // loom treats SeqCst accesses as AcqRel; the fence is what it models of\n                        // the SeqCst claim (`std-writer/src/signal.rs`, \"Under loom\").\n                        crate::sync::fence(Ordering::SeqCst);\n                    }\n", "")],
  ['byte_writer', 'parked_writer_sees_two_racing_reservations']),
 ('B5 the model\'s byte emit without Signal::pushed',
  [('loom-tests/tests/byte_writer.rs',
    "                grant.commit();\n                signal.pushed();",
    "                grant.commit();")],
  ['byte_writer', 'parked_writer_sees_a_racing_reservation']),
 ('B6 byte commit header Relaxed',
  [('core/src/bytes/raw.rs',
    "        self.header(start)\n            .store(record_header(len), Ordering::Release);",
    "        self.header(start)\n            .store(record_header(len), Ordering::Relaxed);")],
  ['byte_ring', 'two_producers_and_consumer_across_the_wrap_with_padding']),
 ('B7 byte producers load the cached bound Relaxed',
  [('core/src/bytes/raw.rs',
    "            let limit = prod.limit.load(Ordering::Acquire);",
    "            let limit = prod.limit.load(Ordering::Relaxed);")],
  ['byte_ring', 'two_producers_and_consumer_across_the_wrap_with_padding']),
 ('B8 byte producers store the cached bound Relaxed',
  [('core/src/bytes/raw.rs',
    "                prod.limit.store(fresh, Ordering::Release);",
    "                prod.limit.store(fresh, Ordering::Relaxed);")],
  ['byte_ring', 'two_producers_and_consumer_across_the_wrap_with_padding']),
 ('B9 byte discard header Relaxed',
  [('core/src/bytes/raw.rs',
    "        self.header(start)\n            .store(skip_header(span), Ordering::Release);",
    "        self.header(start)\n            .store(skip_header(span), Ordering::Relaxed);")],
  ['byte_ring', 'discarded_and_shortened_grants_are_skipped']),
 ('B10 byte discard writes no skip header (drop with records inside)',
  [('core/src/bytes/raw.rs',
    "        self.header(start)\n            .store(skip_header(span), Ordering::Release);",
    "        let _ = skip_header(span);")],
  ['byte_ring', 'drop_with_records_inside']),
 ('B11 byte consumer stores head Relaxed',
  [('core/src/bytes/raw.rs',
    "        self.counters.head.head.store(end, Ordering::Release);",
    "        self.counters.head.head.store(end, Ordering::Relaxed);")],
  ['byte_ring', 'full_ring_races_release']),
 ('B12 byte producers load head Relaxed (refresh)',
  [('core/src/bytes/raw.rs',
    "                let head = head_counter.load(Ordering::Acquire);",
    "                let head = head_counter.load(Ordering::Relaxed);")],
  ['byte_ring', 'full_ring_races_release']),
 ('B13 byte release_consumer Relaxed',
  [('core/src/bytes/raw.rs',
    "        self.counters.head.consumer.store(false, Ordering::Release);",
    "        self.counters.head.consumer.store(false, Ordering::Relaxed);")],
  ['byte_ring', 'consumer_hand_off']),
 ('B14 byte not_ready says Empty without the tail check',
  [('core/src/bytes/raw.rs',
    "        if tail == position {\n            TryPopError::Empty",
    "        if tail == tail {\n            TryPopError::Empty")],
  ['byte_ring', 'read_never_says_empty_after_a_completed_push']),
 ('M12b no loom fence after the refusal count (byte writer)',
  [('std-writer/src/signal.rs',
    '        self.rejected[stripe].fetch_add(1, Ordering::SeqCst);\n        #[cfg(loom)]\n        fence(Ordering::SeqCst);',
    '        self.rejected[stripe].fetch_add(1, Ordering::SeqCst);')],
  ['byte_writer', 'a_byte_refusal_before_close_is_counted_by_the_closing_writer']),
 ('W1 Waiter::poll_until without its fence after registering',
  [('std-writer/src/signal/wake.rs',
    "        // (made under the lock, before this fence) and it wakes the waker we stored.\n        fence(Ordering::SeqCst);",
    "        // (made under the lock, before this fence) and it wakes the waker we stored.")],
  ['async_wake', 'task_waiting_for_space_sees_freed_space']),
 ('W2 Waiter::cancel unlinks a node a notifier already took out',
  [('std-writer/src/signal/wake.rs',
    "            if linked {\n                // SAFETY: the lock is held; the node is alive and linked in this list.",
    "            if linked || *registered {\n                // SAFETY: the lock is held; the node is alive and linked in this list.")],
  ['async_wake', 'cancelled_task_racing_a_notify']),
 ('W3 Signal::close does not notify the space waiters',
  [('std-writer/src/signal.rs',
    "        let end = close_ring();\n        self.space.notify();",
    "        let end = close_ring();")],
  ['async_wake', 'close_races_a_waiting_task']),
 ("W4 Appended's bump Relaxed",
  [('std-writer/src/signal/wake.rs',
    "self.generation.fetch_add(1, Ordering::Release);",
    "self.generation.fetch_add(1, Ordering::Relaxed);")],
  ['async_wake', 'append_wakes_a_follower']),
 ('M20a lane release Relaxed (Lanes)',
  [
   ('core/src/lanes.rs',
    'self.lanes.owned[self.lane].store(false, Ordering::Release);',
    'self.lanes.owned[self.lane].store(false, Ordering::Relaxed);'),
  ],
  ['lanes', 'a_lane_changes_hands']),
 ('M20b lane claim Relaxed (Lanes)',
  [
   ('core/src/lanes.rs',
    '            if owned\n                .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)',
    '            if owned\n                .compare_exchange(false, true, Ordering::Relaxed, Ordering::Relaxed)'),
  ],
  ['lanes', 'a_lane_changes_hands']),
 ('M20c consumer flag released before the lanes (Lanes)',
  [
   ('core/src/lanes.rs',
    '        for (ring, cursor) in self.lanes.lanes.iter().zip(&self.cursors) {\n            ring.raw().release_consumer(cursor);\n        }\n',
    ''),
   ('core/src/lanes.rs',
    '        self.lanes.consumer.store(false, Ordering::Release);\n',
    '        self.lanes.consumer.store(false, Ordering::Release);\n        for (ring, cursor) in self.lanes.lanes.iter().zip(&self.cursors) {\n            ring.raw().release_consumer(cursor);\n        }\n'),
  ],
  ['lanes', 'the_consumer_changes_hands']),
 ('M20d LanesConsumer::try_pop says Pending for a claimed lane again (Lanes)',
  [
   ('core/src/lanes.rs',
    '        self.take_ready().ok_or(TryPopError::Empty)\n',
    '        match self.take_ready() {\n            Some(v) => Ok(v),\n            None if self.lanes.lanes.iter().zip(&self.cursors).any(|(r, c)| r.raw().claimed_past(c)) => Err(TryPopError::Pending),\n            None => Err(TryPopError::Empty),\n        }\n'),
  ],
  ['lanes', 'a_push_is_seen_once_it_happened_before_and_never_pending']),
 ('M20e stamp publish Relaxed, against the Lanes consumer',
  [
   ('core/src/raw.rs',
    'slot.stamp.store(tick | 1, Ordering::Release);',
    'slot.stamp.store(tick | 1, Ordering::Relaxed);'),
  ],
  ['lanes', 'a_push_is_seen_once_it_happened_before_and_never_pending']),
 ('M29 split leaves its consumer cursor shared (reads tail, says Pending)',
  [
   ('core/src/ring.rs',
    '        cursor.solo = true;',
    '        cursor.solo = false;'),
  ],
  ['ring', 'split_consumer_sees_what_happened_before_and_is_never_pending']),
 ('M31 push_solo stores tail without the CLOSED flag split set',
  [
   ('core/src/raw.rs',
    '            .store(cursor.tail | CLOSED, Ordering::Relaxed);',
    '            .store(cursor.tail, Ordering::Relaxed);'),
  ],
  ['ring', 'a_split_ring_refuses_shared_pushes_while_its_solo_producer_lives']),
 ('M30 flush_outcome loads done before EXITED',
  [
   ('std-writer/src/signal.rs',
    '        let exited = self.state_acquire() & EXITED != 0;\n        if Self::reached(self.done(), target) {',
    '        let done = self.done();\n        let exited = self.state_acquire() & EXITED != 0;\n        if Self::reached(done, target) {'),
  ],
  ['flush_exit', 'a_flush_written_before_the_exit_is_never_closed']),
]
only = sys.argv[1:]
results = []
for name, edits, (test, model) in MUTATIONS:
    if only and not any(name.startswith(o) for o in only):
        continue
    originals = {}
    try:
        ok = True
        for path, old, new in edits:
            f = os.path.join(ROOT, path)
            src = originals.setdefault(f, open(f).read())
            now = open(f).read()
            if now.count(old) != 1:
                results.append((name, model, f"MUTATION NOT APPLIED in {path} ({now.count(old)} matches)"))
                ok = False
                break
            open(f, "w").write(now.replace(old, new))
        if not ok:
            print(results[-1], flush=True)
            continue
        b = subprocess.run(["cargo", "build", "-q", "-p", "ringwal-loom-tests", "--release", "--tests"],
                           cwd=ROOT, env=ENV, capture_output=True, text=True)
        if b.returncode != 0:
            results.append((name, model, "BUILD FAILED: " + b.stderr[-400:]))
            print(results[-1], flush=True)
            continue
        t0 = time.time()
        r = subprocess.run(["timeout", "900", "cargo", "test", "-q", "-p", "ringwal-loom-tests", "--release",
                            "--test", test, "--", model, "--exact", "--nocapture"],
                           cwd=ROOT, env=ENV, capture_output=True, text=True)
        out = r.stdout + r.stderr
        why = ""
        for key in ["Causality violation", "deadlock", "maximum number of branches", "assertion", "panicked at"]:
            i = out.find(key)
            if i >= 0:
                why = out[i: i + 140].replace("\n", " | ")
                break
        verdict = "FAILED as expected" if r.returncode != 0 else "PASSED (mutation NOT caught)"
        results.append((name, model, f"{verdict} in {time.time()-t0:.0f}s: {why}"))
        print(results[-1], flush=True)
    finally:
        for f, src in originals.items():
            open(f, "w").write(src)
failed = [r for r in results if not r[2].startswith("FAILED as expected")]
print(f"{len(results) - len(failed)} of {len(results)} mutations caught")
sys.exit(1 if failed else 0)
