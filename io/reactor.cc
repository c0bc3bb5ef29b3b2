#include "io/reactor.h"

namespace dmalog::io {
namespace {

// The executor running on this thread; null elsewhere. Not owned.
thread_local Reactor* current_reactor = nullptr;

}  // namespace

Reactor* Reactor::Current() noexcept { return current_reactor; }

void Reactor::SetCurrent(Reactor* reactor) noexcept { current_reactor = reactor; }

}  // namespace dmalog::io
