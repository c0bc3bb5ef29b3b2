// Drives the real `dmalog` binary: output and exit status of every verb.
// The parser is also tested in-process (tools/cli_command.cc is compiled
// into this test: it depends on nothing but the public headers).
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "dmalog/engine.h"
#include "tests/test_util.h"
#include "tools/cli_command.cc"  // NOLINT: the parser under test, without gflags.

extern char** environ;

namespace dmalog::cli {
namespace {

using dmalog::testing::TestDir;

const char kBinary[] = DMALOG_TEST_DATA_DIR "/../dmalog";
// A small segment keeps every new database cheap to create.
const char kSegmentFlag[] = "--segment_size_bytes=4194304";

struct RunResult {
  int code = -1;
  std::string out;
  std::string err;
};

std::string ReadAll(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(std::filesystem::exists(kBinary)) << kBinary << " is missing: build dmalog_cli";
  }

  // Runs the binary with `args`, `input` on its stdin.
  RunResult Run(const std::vector<std::string>& args, const std::string& input = "") {
    const std::string in = dir_.File("stdin"), out = dir_.File("stdout"), err = dir_.File("stderr");
    std::ofstream(in, std::ios::binary) << input;
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, in.c_str(), O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&actions, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    std::vector<std::string> all = {kBinary};
    all.insert(all.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (std::string& a : all) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t pid = 0;
    RunResult r;
    const int rc = posix_spawn(&pid, kBinary, &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    EXPECT_EQ(rc, 0) << "posix_spawn " << kBinary;
    if (rc != 0) return r;
    int status = 0;
    EXPECT_EQ(waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status)) << "dmalog died; status " << status;
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    r.out = ReadAll(out);
    r.err = ReadAll(err);
    return r;
  }

  // Runs a verb on database `db` (a directory in the test's TestDir).
  RunResult Cli(const std::string& db, std::vector<std::string> args,
                const std::string& input = "") {
    args.insert(args.begin(), {"--db=" + dir_.File(db), kSegmentFlag, "--shards=2"});
    return Run(args, input);
  }

  TestDir dir_;
};

#define EXPECT_RUN(r, code_expected, out_expected) \
  do {                                             \
    const RunResult _r = (r);                      \
    EXPECT_EQ(_r.code, code_expected) << _r.err;   \
    EXPECT_EQ(_r.out, out_expected) << _r.err;     \
  } while (0)

TEST_F(CliTest, PutGetDelete) {
  EXPECT_RUN(Cli("db", {"put", "k1", "v1"}), kExitOk, "");
  EXPECT_RUN(Cli("db", {"put", "k2", "value with spaces"}), kExitOk, "");
  EXPECT_RUN(Cli("db", {"get", "k1"}), kExitOk, "v1\n");
  EXPECT_RUN(Cli("db", {"get", "k2"}), kExitOk, "value with spaces\n");
  EXPECT_RUN(Cli("db", {"put", "k1", "v1b"}), kExitOk, "");
  EXPECT_RUN(Cli("db", {"get", "k1"}), kExitOk, "v1b\n");
  EXPECT_RUN(Cli("db", {"delete", "k1"}), kExitOk, "");
  RunResult r = Cli("db", {"get", "k1"});
  EXPECT_EQ(r.code, kExitNotFound);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "NotFound: k1\n");
  r = Cli("db", {"get", "never"});
  EXPECT_EQ(r.code, kExitNotFound);
  EXPECT_EQ(r.err, "NotFound: never\n");
  // Unsynced writes are still durable once the verb (and its Close) returns.
  EXPECT_RUN(Cli("db", {"--sync=false", "put", "k3", "v3"}), kExitOk, "");
  EXPECT_RUN(Cli("db", {"--nosync", "put", "k4", "v4"}), kExitOk, "");
  EXPECT_RUN(Cli("db", {"get", "k3"}), kExitOk, "v3\n");
  EXPECT_RUN(Cli("db", {"get", "k4"}), kExitOk, "v4\n");
  // After "--", arguments starting with '-' are keys and values.
  EXPECT_RUN(Cli("db", {"put", "--", "-k", "-v"}), kExitOk, "");
  EXPECT_RUN(Cli("db", {"get", "--", "-k"}), kExitOk, "-v\n");
}

TEST_F(CliTest, ReadVerbOnMissingDatabaseNamesTheDirectory) {
  for (const char* verb : {"scan", "dump", "stats", "tail", "get", "delete"}) {
    std::vector<std::string> args = {verb};
    if (args[0] == "get" || args[0] == "delete") args.push_back("k");
    RunResult r = Cli("missing", args);
    EXPECT_EQ(r.code, kExitError) << verb;
    EXPECT_NE(r.err.find(dir_.File("missing") + " does not exist"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("--create_if_missing"), std::string::npos) << r.err;
  }
  EXPECT_FALSE(std::filesystem::exists(dir_.File("missing")));
  // Asking for creation explicitly works for a read verb too.
  EXPECT_RUN(Cli("missing", {"--create_if_missing", "scan"}), kExitOk, "");
}

// A read verb on an existing directory that holds no database says so and
// leaves the directory as it was (it used to become a database, with a
// lock file, a MANIFEST and preallocated segments).
TEST_F(CliTest, ReadVerbOnDirectoryWithoutDatabaseCreatesNothing) {
  const std::string plain = dir_.File("plain");
  ASSERT_TRUE(std::filesystem::create_directory(plain));
  for (const char* verb : {"scan", "dump", "stats", "tail", "get", "delete"}) {
    std::vector<std::string> args = {verb};
    if (args[0] == "get" || args[0] == "delete") args.push_back("k");
    RunResult r = Cli("plain", args);
    EXPECT_EQ(r.code, kExitError) << verb;
    EXPECT_NE(r.err.find(plain + " holds no dmalog database (no MANIFEST)"), std::string::npos)
        << r.err;
    EXPECT_NE(r.err.find("--create_if_missing"), std::string::npos) << r.err;
  }
  EXPECT_TRUE(std::filesystem::is_empty(plain));
  EXPECT_RUN(Cli("plain", {"put", "k", "v"}), kExitOk, "");
  EXPECT_RUN(Cli("plain", {"get", "k"}), kExitOk, "v\n");
}

TEST_F(CliTest, ScanFromToMaxKeys) {
  for (const char* k : {"a", "b", "c", "d", "e"}) {
    ASSERT_EQ(Cli("db", {"put", k, std::string("v") + k}).code, kExitOk);
  }
  EXPECT_RUN(Cli("db", {"scan"}), kExitOk, "a ==> va\nb ==> vb\nc ==> vc\nd ==> vd\ne ==> ve\n");
  EXPECT_RUN(Cli("db", {"scan", "--from=b", "--to=d"}), kExitOk, "b ==> vb\nc ==> vc\n");
  EXPECT_RUN(Cli("db", {"--max_keys=2", "scan"}), kExitOk, "a ==> va\nb ==> vb\n");
  EXPECT_RUN(Cli("db", {"scan", "--from=bb", "--max_keys=2"}), kExitOk, "c ==> vc\nd ==> vd\n");
  EXPECT_RUN(Cli("db", {"scan", "--from=z"}), kExitOk, "");
}

TEST_F(CliTest, TailPrintsTheLogInOrder) {
  const std::string db = "--db=" + dir_.File("db");
  for (std::vector<std::string> args :
       {std::vector<std::string>{"put", "a", "1"}, {"put", "b", "2"}, {"delete", "a"}}) {
    args.insert(args.begin(), {db, kSegmentFlag, "--shards=1"});
    ASSERT_EQ(Run(args).code, kExitOk);
  }
  EXPECT_RUN(Run({db, "tail"}), kExitOk, "1 PUT a ==> 1\n2 PUT b ==> 2\n3 DELETE a\n");
  EXPECT_RUN(Run({db, "tail", "--from_seq=2", "--max_records=1"}), kExitOk, "2 PUT b ==> 2\n");
  EXPECT_RUN(Run({db, "tail", "--shard=0", "--from_seq=4"}), kExitOk, "");
  EXPECT_RUN(Run({db, "--hex", "tail", "--from_seq=3"}), kExitOk, "3 DELETE 0x61\n");
  RunResult r = Run({db, "tail", "--shard=5"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_NE(r.err.find("shard 5 does not exist"), std::string::npos) << r.err;
}

TEST_F(CliTest, Stats) {
  ASSERT_EQ(Cli("db", {"put", "k", "v"}).code, kExitOk);
  RunResult r = Cli("db", {"stats"});
  EXPECT_EQ(r.code, kExitOk) << r.err;
  for (const std::string& want :
       {"db: " + dir_.File("db") + "\n", std::string("io backend: "), std::string("io fallback: "),
        std::string("direct I/O: "), std::string("segment size: 4194304 bytes (4 MiB)\n"),
        std::string("shards: 2\n"), std::string("shard 0: keys "), std::string("shard 1: keys "),
        std::string("avg records/flush"), std::string("index bytes/key"),
        std::string("recovery: ")}) {
    EXPECT_NE(r.out.find(want), std::string::npos) << "missing '" << want << "' in\n" << r.out;
  }
}

TEST_F(CliTest, HexFlags) {
  EXPECT_RUN(Cli("db", {"--hex", "put", "0x6B01", "0x00ff"}), kExitOk, "");
  EXPECT_RUN(Cli("db", {"--hex", "get", "0x6B01"}), kExitOk, "0x00FF\n");
  EXPECT_RUN(Cli("db", {"--key_hex", "get", "0x6b01"}), kExitOk, std::string("\0\xFF\n", 3));
  EXPECT_RUN(Cli("db", {"--key_hex", "put", "0x6869", "world"}), kExitOk, "");
  EXPECT_RUN(Cli("db", {"get", "hi"}), kExitOk, "world\n");
  EXPECT_RUN(Cli("db", {"--value_hex", "get", "hi"}), kExitOk, "0x776F726C64\n");
  EXPECT_RUN(Cli("db", {"--key_hex", "scan", "--from=0x6869", "--to=0x6B"}), kExitOk,
             "0x6869 ==> world\n");
  EXPECT_RUN(Cli("db", {"--hex", "scan"}), kExitOk, "0x6869 ==> 0x776F726C64\n0x6B01 ==> 0x00FF\n");
  RunResult r = Cli("db", {"--key_hex", "get", "0x6B0"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_NE(r.err.find("0x followed by two hex digits per byte"), std::string::npos) << r.err;
  r = Cli("db", {"--key_hex", "get", "hi"});
  EXPECT_EQ(r.code, kExitUsage);
  r = Cli("db", {"--key_hex", "get", "0xZZ"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_NE(r.err.find("non-hex digit"), std::string::npos) << r.err;
  r = Cli("db", {"--key_hex", "get", "0x6B02"});
  EXPECT_EQ(r.code, kExitNotFound);
  EXPECT_EQ(r.err, "NotFound: 0x6B02\n");
}

TEST_F(CliTest, UsageErrorsExitTwoWithUsage) {
  const std::vector<std::vector<std::string>> cases = {
      {},
      {"bogus"},
      {"put", "k"},
      {"put", "k", "v", "extra"},
      {"get"},
      {"scan", "--max_keys=abc"},
      {"scan", "--max_keys=0"},
      {"tail", "--from_seq=-1"},
      {"--recovery_mode=bogus", "get", "k"},
      {"--bogus_flag=1", "get", "k"},
      {"--sync=maybe", "put", "k", "v"},
      {"--shards=x", "put", "k", "v"},
      {"demo", "--threads=0"},
      {"get", "--db"},
  };
  for (const auto& args : cases) {
    std::vector<std::string> full = {"--db=" + dir_.File("db")};
    full.insert(full.end(), args.begin(), args.end());
    RunResult r = Run(full);
    std::string joined;
    for (const auto& a : args) joined += a + " ";
    EXPECT_EQ(r.code, kExitUsage) << joined << "\n" << r.err;
    EXPECT_NE(r.err.find("Usage: dmalog"), std::string::npos) << joined << "\n" << r.err;
    EXPECT_EQ(r.out, "") << joined;
  }
  RunResult r = Run({"--recovery_mode=bogus", "get", "k"});
  EXPECT_NE(r.err.find("point_in_time"), std::string::npos) << r.err;  // Says what to pass.
  r = Run({"get", "k", "--max_keys=abc"});
  EXPECT_NE(r.err.find("--max_keys=abc is not a whole number"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(dir_.File("db")));  // Nothing was opened.
  EXPECT_FALSE(std::filesystem::exists("dmalog-data"));
  // The engine's own argument checks are usage errors too.
  r = Cli("db", {"--segment_size_bytes=5000", "put", "k", "v"});
  EXPECT_EQ(r.code, kExitUsage) << r.err;
  EXPECT_NE(r.err.find("segment_size_bytes"), std::string::npos) << r.err;
  // --help prints the usage on stdout and succeeds.
  r = Run({"--help"});
  EXPECT_EQ(r.code, kExitOk);
  EXPECT_NE(r.out.find("Usage: dmalog"), std::string::npos);
}

TEST_F(CliTest, LockConflictExitsThree) {
  Options options;
  options.db_path = dir_.File("db");
  options.shard_count = 1;
  options.segment_size_bytes = 4u << 20;
  Result<std::unique_ptr<Engine>> db = Engine::Open(options);
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  for (const char* verb : {"get", "put"}) {
    std::vector<std::string> args = {verb, "k"};
    if (std::string(verb) == "put") args.push_back("v");
    RunResult r = Cli("db", args);
    EXPECT_EQ(r.code, kExitError) << r.err;
    EXPECT_NE(
        r.err.find("database " + options.db_path + " is locked by pid " + std::to_string(getpid())),
        std::string::npos)
        << r.err;
  }
  ASSERT_OK((*db)->Close());
  EXPECT_RUN(Cli("db", {"put", "k", "v"}), kExitOk, "");
}

TEST_F(CliTest, CorruptionExitsThreeNamingFileAndOffset) {
  const std::string db = "--db=" + dir_.File("db");
  for (const char* k : {"k1", "k2", "k3"}) {
    ASSERT_EQ(Run({db, kSegmentFlag, "--shards=1", "put", k, std::string("value-") + k}).code,
              kExitOk);
  }
  // Flip a byte of the first record's value: damage followed by valid records.
  const std::string segment = dir_.File("db/shard-000/00000001.seg");
  std::string bytes = ReadAll(segment);
  const size_t at = bytes.find("k1value-k1");
  ASSERT_NE(at, std::string::npos);
  bytes[at + 5] ^= 0x20;
  std::ofstream(segment, std::ios::binary | std::ios::in | std::ios::out) << bytes;
  RunResult r = Run({db, "scan"});
  EXPECT_EQ(r.code, kExitError);
  EXPECT_EQ(r.out, "");
  EXPECT_NE(r.err.find("Corruption: "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(segment + " offset "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("--recovery_mode="), std::string::npos) << r.err;  // What to do.
  r = Run({db, "--recovery_mode=skip_any_corrupted_records", "scan"});
  EXPECT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(r.out, "k2 ==> value-k2\nk3 ==> value-k3\n");
  // What recovery dropped is said on stderr, not only in that open's Stats().
  EXPECT_NE(r.err.find("shard 0: recovery dropped "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(segment + " offset "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("skipped"), std::string::npos) << r.err;
}

TEST_F(CliTest, DumpLoadRoundTrip) {
  // More keys than one scan page, so dump pages through the database.
  std::string lines;
  for (int i = 0; i < 2500; ++i)
    lines += "key" + std::to_string(i) + " ==> v" + std::to_string(i) + "\n";
  lines += "odd ==> a value ==> with the separator\n";
  RunResult r = Cli("src", {"load"}, lines);
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_NE(r.err.find("2501 records written"), std::string::npos) << r.err;
  const RunResult dump = Cli("src", {"dump"});
  ASSERT_EQ(dump.code, kExitOk) << dump.err;
  EXPECT_EQ(std::count(dump.out.begin(), dump.out.end(), '\n'), 2501);
  EXPECT_NE(dump.out.find("\nodd ==> a value ==> with the separator\n"), std::string::npos);
  ASSERT_EQ(Cli("dst", {"load"}, dump.out).code, kExitOk);
  EXPECT_RUN(Cli("dst", {"scan"}), kExitOk, Cli("src", {"scan"}).out);
  EXPECT_RUN(Cli("dst", {"dump"}), kExitOk, dump.out);
  EXPECT_RUN(Cli("dst", {"get", "key1234"}), kExitOk, "v1234\n");
  // --sync=false: load syncs once at the end, before it exits 0.
  ASSERT_EQ(Cli("nosync", {"--sync=false", "load"}, dump.out).code, kExitOk);
  EXPECT_RUN(Cli("nosync", {"dump"}), kExitOk, dump.out);

  // A key that plain text cannot carry: dump says to use --hex, which works.
  ASSERT_EQ(Cli("src", {"--key_hex", "put", "0x610A62", "nl"}).code, kExitOk);
  r = Cli("src", {"dump"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_NE(r.err.find("dump with --hex"), std::string::npos) << r.err;
  const RunResult hex = Cli("src", {"--hex", "dump"});
  ASSERT_EQ(hex.code, kExitOk) << hex.err;
  ASSERT_EQ(Cli("hex", {"--hex", "load"}, hex.out).code, kExitOk);
  EXPECT_RUN(Cli("hex", {"--hex", "dump"}), kExitOk, hex.out);

  // Hex for one side only still checks the other: a value with a newline
  // under --key_hex (which used to dump, exit 0 and load back cut short).
  ASSERT_EQ(Cli("one", {"put", "nl", "line1\nline2"}).code, kExitOk);
  r = Cli("one", {"--key_hex", "dump"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_NE(r.err.find("key '0x6E6C': its value contains a newline"), std::string::npos) << r.err;
  EXPECT_EQ(Cli("one", {"--value_hex", "dump"}).code, kExitOk);
  // The key side under --value_hex is checked as text.
  r = Cli("src", {"--value_hex", "dump"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_NE(r.err.find("contains a newline or ' ==> '"), std::string::npos) << r.err;
}

TEST_F(CliTest, LoadStopsAtAMalformedLine) {
  RunResult r = Cli("db", {"load"}, "a ==> 1\nb ==> 2\nno separator here\nc ==> 3\n");
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_NE(r.err.find("line 3: no ' ==> '"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("tail -n +3"), std::string::npos) << r.err;  // What to do.
  EXPECT_RUN(Cli("db", {"get", "a"}), kExitOk, "1\n");
  EXPECT_RUN(Cli("db", {"get", "b"}), kExitOk, "2\n");
  EXPECT_EQ(Cli("db", {"get", "c"}).code, kExitNotFound);
  // Bad hex is malformed too; an over-long key is rejected by the engine.
  r = Cli("db", {"--hex", "load"}, "0x61 ==> 0x31\n0x6 ==> 0x32\n");
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_NE(r.err.find("line 2"), std::string::npos) << r.err;
  r = Cli("db", {"load"}, "ok ==> 1\n" + std::string(5000, 'k') + " ==> v\n");
  EXPECT_EQ(r.code, kExitUsage) << r.err;
  EXPECT_NE(r.err.find("line 2"), std::string::npos) << r.err;
}

TEST_F(CliTest, DemoRunsTwice) {
  for (int run = 0; run < 2; ++run) {
    RunResult r = Cli("demo", {"demo", "--threads=4", run == 0 ? "--num=60" : "--num=40"});
    ASSERT_EQ(r.code, kExitOk) << r.err << r.out;
    for (const std::string& want :
         {std::string("records:      ") + (run == 0 ? "240" : "160"), std::string("ops/s"),
          std::string("p50 "), std::string("p99 "), std::string("io backend:   "),
          std::string("direct I/O:   "),
          "data:         " + std::filesystem::weakly_canonical(dir_.File("demo")).string()}) {
      EXPECT_NE(r.out.find(want), std::string::npos) << "missing '" << want << "' in\n" << r.out;
    }
    if (run == 1) {
      EXPECT_NE(r.out.find("removed 80 keys"), std::string::npos) << r.out;
    }
  }
}

// ---- The parser, in-process.

TEST(ParseCommandTest, VerbDefaultsAndFlags) {
  CliFlags f;
  Result<Command> c = ParseCommand(f, {"get", "k"});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->verb, Verb::kGet);
  EXPECT_FALSE(c->options.create_if_missing);
  EXPECT_EQ(c->options.db_path, "./dmalog-data");
  c = ParseCommand(f, {"put", "k", "v"});
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->options.create_if_missing);
  EXPECT_TRUE(c->write_options.sync);
  f.create_if_missing = false;
  f.sync = false;
  f.recovery_mode = "point_in_time";
  f.max_keys = "7";
  c = ParseCommand(f, {"load"});
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE(c->options.create_if_missing);
  EXPECT_FALSE(c->write_options.sync);
  EXPECT_EQ(c->options.recovery_mode, RecoveryMode::kPointInTime);
  EXPECT_EQ(c->scan.max_keys, 7u);
  f = CliFlags{};
  f.num = "18446744073709551616";  // One over uint64.
  EXPECT_TRUE(ParseCommand(f, {"demo"}).status().IsInvalidArgument());
  f = CliFlags{};
  f.db = "";
  EXPECT_TRUE(ParseCommand(f, {"stats"}).status().IsInvalidArgument());
  EXPECT_TRUE(ParseCommand(CliFlags{}, {}).status().IsInvalidArgument());
}

TEST(ParseCommandTest, Hex) {
  EXPECT_EQ(ToHex(std::string("\x00\x7F\xFF", 3)), "0x007FFF");
  EXPECT_EQ(ToHex(""), "0x");
  Result<std::string> b = FromHex("0Xa0fF", "key");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(*b, "\xA0\xFF");
  EXPECT_TRUE(FromHex("0x", "key").ok());
  EXPECT_FALSE(FromHex("a0", "key").ok());
  EXPECT_FALSE(FromHex("0xa", "key").ok());
  EXPECT_FALSE(FromHex("0xag", "key").ok());
  CliFlags f;
  f.hex = true;
  f.from = "0x61";
  Result<Command> c = ParseCommand(f, {"scan"});
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->scan.from, "a");
  EXPECT_TRUE(c->key_hex && c->value_hex);
}

}  // namespace
}  // namespace dmalog::cli
