// A program embedding dmalog through its installed package: opens a
// database, writes durably (blocking, batched and asynchronous forms), reads
// back and scans. Usage: embed_example DIR
#include <dmalog/engine.h>

#include <atomic>
#include <cstdio>
#include <future>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  dmalog::Options options;
  options.db_path = argv[1];
  options.segment_size_bytes = 4u << 20;
  dmalog::Result<std::unique_ptr<dmalog::Engine>> db = dmalog::Engine::Open(options);
  if (!db.ok()) {
    std::fprintf(stderr, "open: %s\n", db.status().ToString().c_str());
    return 3;
  }
  dmalog::Engine& engine = **db;
  dmalog::Status s = engine.Put({}, "greeting", "hello");  // Durable on return.
  if (!s.ok()) return std::fprintf(stderr, "put: %s\n", s.ToString().c_str()), 3;

  dmalog::WriteBatch batch;  // Atomic: one hash tag keeps the keys on one shard.
  if (!batch.Put("user:{42}:name", "Ada").ok() || !batch.Put("user:{42}:lang", "C++").ok()) {
    return 3;
  }
  s = engine.Write({}, batch);
  if (!s.ok()) return std::fprintf(stderr, "write: %s\n", s.ToString().c_str()), 3;

  std::promise<dmalog::Status> done;  // The asynchronous form.
  engine.PutAsync({}, "async", "value", [&done](dmalog::Status st) { done.set_value(st); });
  s = done.get_future().get();
  if (!s.ok()) return std::fprintf(stderr, "put async: %s\n", s.ToString().c_str()), 3;

  dmalog::Result<std::string> v = engine.Get("greeting");
  if (!v.ok()) return std::fprintf(stderr, "get: %s\n", v.status().ToString().c_str()), 3;
  std::printf("greeting = %s\n", v->c_str());
  dmalog::Result<std::vector<dmalog::KeyValue>> all = engine.Scan({});
  if (!all.ok()) return 3;
  for (const dmalog::KeyValue& kv : *all)
    std::printf("%s ==> %s\n", kv.key.c_str(), kv.value.c_str());
  s = engine.Close();
  return s.ok() ? 0 : 3;
}
