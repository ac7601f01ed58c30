#include "clients/cpp/documents.hpp"

#include <boost/asio/post.hpp>

#include "clients/cpp/decode.hpp"
#include "clients/cpp/document_registry.hpp"

namespace troupe::client {

namespace net = boost::asio;

documents::documents(connection& client) : documents(client, options{}) {}

documents::documents(connection& client, options opts)
    : client_(client), core_(std::make_shared<document::registry>(opts)) {
  std::weak_ptr<document::registry> w = core_;
  client_.on_push("op", [w](const reply& r) {
    auto core = w.lock();
    auto room = r.map().str("room");
    if (!core || !room) return;
    if (auto d = core->find(std::string(*room))) {
      lock_type l(d->mu_);
      d->on_op_push(r);
    }
  });
  client_.on_push("pdiff", [w](const reply& r) {
    auto core = w.lock();
    if (!core) return;
    auto diff = parse_pdiff(r);
    if (!diff) return;
    if (auto d = core->find(diff->room)) {
      lock_type l(d->mu_);
      d->on_pdiff(std::move(*diff));
    }
  });
  client_.on_state([w](const state_event& ev) {
    auto core = w.lock();
    if (!core) return;
    if (ev.state == connection_state::connected) {
      {
        std::lock_guard<std::mutex> l(core->m);
        core->client_id = ev.info.client;
      }
      for (auto& d : core->all()) {
        lock_type l(d->mu_);
        d->on_connected(ev.info.client);
      }
    } else if (ev.state != connection_state::idle) {
      for (auto& d : core->all()) {
        lock_type l(d->mu_);
        d->on_connection_lost();
      }
    }
  });
}

documents::~documents() = default;

std::shared_ptr<document> documents::open(std::string room, document_handlers handlers,
                                          std::function<void(result<document_opened>)> done) {
  std::shared_ptr<document> doc(new document(core_, client_, room, std::move(handlers)));
  bool taken = false;
  {
    std::lock_guard<std::mutex> l(core_->m);
    auto& slot = core_->docs[room];
    taken = !slot.expired();
    if (!taken) slot = doc;
  }
  lock_type l(doc->mu_);
  if (taken) {
    doc->phase_ = document::phase_kind::closed;
    if (done)
      net::post(client_.executor(), [done = std::move(done), room] {
        done(error{"already_open", room});
      });
    return doc;
  }
  doc->start_open(std::move(done));
  return doc;
}

} // namespace troupe::client
