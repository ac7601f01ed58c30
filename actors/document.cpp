#include "actors/document.hpp"

#include <caf/actor_companion.hpp>
#include <caf/all.hpp>

#include "actors/member_list.hpp"
#include "actors/messages.hpp"
#include "actors/strand_actor.hpp"
#include "core/document_state.hpp"
#include "core/metrics.hpp"
#include "core/store.hpp"
#include "protocol/codec.hpp"

namespace troupe::actors {

namespace {

class document {
public:
  document(companion* self, std::string name, core::document_state state, caf::actor presence,
           core::store& store, core::metrics& metrics)
      : self_(self), name_(std::move(name)), state_(std::move(state)),
        presence_(std::move(presence)), store_(store), metrics_(metrics) {}

  void open(doc_open& open) {
    const auto& since = open.request.since;
    std::string head;
    if (since && since->epoch == state_.epoch() && since->rev <= state_.rev() &&
        state_.covers(since->rev)) {
      std::vector<protocol::op_item> items;
      for (const auto* logged : state_.after(since->rev))
        items.push_back(item(*logged));
      head = protocol::encode_opened_recovered_head(open.request.id, name_, state_.rev(),
                                                    state_.epoch(),
                                                    protocol::encode_op_items(items));
    } else {
      head = protocol::encode_opened_head(open.request.id, name_, state_.rev(), state_.epoch(),
                                          state_.text().to_string());
    }
    // Presence completes and sends the reply; this holder's pushes wait for it.
    holders_.add(open.from); // opening again resynchronises; never listed twice
    self_->send(presence_, presence_join{std::move(open.from), presence_hold::document,
                                         std::move(head)});
  }

  void joined(const std::string& client) { holders_.activate(client); }

  void submit(doc_op& batch) {
    protocol::frame_builder replies; // acks and errors for the author, in order
    protocol::frame_builder pushes;  // the accepted operations, for everyone else
    const bool others = holders_.size() > (holders_.contains(batch.from.client) ? 1u : 0u);
    for (const auto& request : batch.requests)
      submit(batch.from, request, replies, others ? &pushes : nullptr);
    holders_.reply(batch.from, replies.finish());
    if (!pushes.empty())
      holders_.send(pushes.finish(), batch.from.client);
  }

  void close(doc_close& close) {
    remove(close.from.client, false);
    close.from.sink->send(protocol::make_frame([&](protocol::frame_builder& out) {
      protocol::encode_closed(out, close.request.id, name_);
    }));
  }

  void leave(const room_leave& leave) { remove(leave.client, leave.abrupt); }

  /// Hands the document to the store so the next actor of this room continues it, and ends.
  void stop() {
    store_.keep_document(name_, std::move(state_));
    self_->send(caf::actor_cast<caf::actor>(self_->current_sender()), stopped_atom::value, name_);
    self_->quit();
  }

private:
  static protocol::op_item item(const core::logged_operation& logged) {
    return {logged.rev, &logged.op, logged.user, logged.key};
  }

  void submit(const peer_ref& from, const protocol::op_request& request,
              protocol::frame_builder& replies, protocol::frame_builder* pushes) {
    auto fail = [&](protocol::error_code code, std::string_view reason) {
      core::metrics::add(metrics_.bad_requests);
      protocol::encode_error(replies, request.id, code, reason);
    };
    auto parsed = ot::parse(request.op);
    if (!parsed.op)
      return fail(protocol::error_code::bad_request, parsed.error);
    const auto result =
        state_.submit(request.rev, std::move(*parsed.op), request.key, from.user);
    using outcome = core::document_state::outcome;
    switch (result.kind) {
      case outcome::duplicate: // a resubmission: its first revision, not applied twice
        return protocol::encode_doc_ack(replies, request.id, name_, result.rev);
      case outcome::conflict:
        return fail(protocol::error_code::conflict, result.reason);
      case outcome::invalid:
        return fail(protocol::error_code::bad_request, result.reason);
      case outcome::applied:
        break;
    }
    protocol::encode_doc_ack(replies, request.id, name_, result.rev);
    if (pushes)
      protocol::encode_op(*pushes, name_, item(*result.accepted));
    core::metrics::add(metrics_.operations);
  }

  void remove(const std::string& client, bool abrupt) {
    if (holders_.remove(client))
      self_->send(presence_, presence_leave{client, presence_hold::document, abrupt});
  }

  companion* self_;
  std::string name_;
  core::document_state state_;
  caf::actor presence_;
  core::store& store_;
  core::metrics& metrics_;
  member_list holders_;
};

} // namespace

caf::actor spawn_document(caf::actor_system& system, boost::asio::any_io_executor strand,
                          std::string name, const document_settings& settings,
                          caf::actor presence, core::store& store, core::metrics& metrics) {
  auto state = store.take_document(name);
  if (!state)
    state.emplace(settings.log, core::new_epoch());
  return spawn_on_strand(system, std::move(strand), [&](companion* self) {
    auto actor = std::make_shared<document>(self, std::move(name), std::move(*state),
                                            std::move(presence), store, metrics);
    return caf::behavior{
        [actor](doc_open& open) { actor->open(open); },
        [actor](doc_op& op) { actor->submit(op); },
        [actor](doc_close& close) { actor->close(close); },
        [actor](joined_atom, const std::string& client) { actor->joined(client); },
        [actor](const room_leave& leave) { actor->leave(leave); },
        [actor](stop_atom) { actor->stop(); },
    };
  });
}

} // namespace troupe::actors
