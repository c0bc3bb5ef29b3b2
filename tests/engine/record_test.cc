#include "engine/record.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "tests/test_util.h"

namespace dmalog::engine {
namespace {

std::vector<uint8_t> Encode(uint64_t segment_id, format::RecordType type, uint64_t seq,
                            std::string_view key, std::string_view value) {
  std::vector<uint8_t> buf(EncodedRecordBytes(key.size(), value.size()));
  EXPECT_EQ(EncodeRecord(buf, segment_id, type, seq, key, value), buf.size());
  return buf;
}

TEST(RecordTest, RoundTrip) {
  auto buf = Encode(7, format::kPutType, 42, "key", "value");
  DecodeResult d = DecodeRecord(buf, 7);
  ASSERT_EQ(d.outcome, DecodeOutcome::kRecord);
  EXPECT_EQ(d.record.type, format::kPutType);
  EXPECT_EQ(d.record.sequence, 42u);
  EXPECT_EQ(d.record.key, "key");
  EXPECT_EQ(d.record.value, "value");
  EXPECT_EQ(d.record.encoded_bytes, buf.size());
}

TEST(RecordTest, FlushStartFlagRoundTripsAndUnknownFlagsAreBadHeaders) {
  std::vector<uint8_t> buf(EncodedRecordBytes(1, 1));
  EncodeRecord(buf, 7, format::kPutType, 5, "k", "v", format::kRecordFlagFlushStart);
  DecodeResult d = DecodeRecord(buf, 7);
  ASSERT_EQ(d.outcome, DecodeOutcome::kRecord);
  EXPECT_TRUE(d.record.starts_flush());
  EXPECT_FALSE(DecodeRecord(Encode(7, format::kPutType, 5, "k", "v"), 7).record.starts_flush());
  // A flag this version does not know: the header is bad, whatever the checksum.
  buf[format::kRecordFlagsOffset] = 0x02;
  EXPECT_EQ(DecodeRecord(buf, 7).outcome, DecodeOutcome::kBadHeader);
}

TEST(RecordTest, ChecksumIsSeededWithSegmentId) {
  auto buf = Encode(7, format::kPutType, 1, "k", "v");
  EXPECT_EQ(DecodeRecord(buf, 8).outcome, DecodeOutcome::kBadChecksum);
}

TEST(RecordTest, EveryFlippedBitIsDetected) {
  const auto good = Encode(3, format::kDeleteType, 9, "some-key", "");
  for (size_t bit = 0; bit < good.size() * 8; ++bit) {
    auto bad = good;
    bad[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
    EXPECT_NE(DecodeRecord(bad, 3).outcome, DecodeOutcome::kRecord) << "bit " << bit;
  }
}

TEST(RecordTest, ZeroTruncatedAndBadHeader) {
  std::vector<uint8_t> zeros(64, 0);
  EXPECT_EQ(DecodeRecord(zeros, 1).outcome, DecodeOutcome::kZero);
  auto buf = Encode(1, format::kPutType, 1, "key", "value");
  EXPECT_EQ(DecodeRecord(std::span(buf).first(buf.size() - 1), 1).outcome,
            DecodeOutcome::kTruncated);
  EXPECT_EQ(DecodeRecord(std::span(buf).first(10), 1).outcome, DecodeOutcome::kTruncated);
  buf[format::kRecordTypeOffset] = 200;  // Unknown mandatory type.
  EXPECT_EQ(DecodeRecord(buf, 1).outcome, DecodeOutcome::kBadHeader);
}

TEST(RecordTest, PaddingFillsExactly) {
  std::vector<uint8_t> buf(300, 0xAB);
  EncodePadding(buf, 5);
  DecodeResult d = DecodeRecord(buf, 5);
  ASSERT_EQ(d.outcome, DecodeOutcome::kRecord);
  EXPECT_EQ(d.record.type, format::kPaddingType);
  EXPECT_EQ(d.record.encoded_bytes, 300u);
}

TEST(RecordTest, GapIsPaddingWhenAHeaderFitsElseZeros) {
  std::vector<uint8_t> wide(format::kRecordHeaderBytes, 0xAB);
  EncodeGap(wide, 5);
  DecodeResult d = DecodeRecord(wide, 5);
  ASSERT_EQ(d.outcome, DecodeOutcome::kRecord);
  EXPECT_EQ(d.record.type, format::kPaddingType);
  EXPECT_EQ(d.record.encoded_bytes, format::kRecordHeaderBytes);
  std::vector<uint8_t> narrow(format::kRecordHeaderBytes - 1, 0xAB);
  EncodeGap(narrow, 5);
  EXPECT_EQ(narrow, std::vector<uint8_t>(narrow.size(), 0));
}

TEST(RecordTest, CloseRecordCarriesTheLastSequence) {
  std::vector<uint8_t> buf(format::kRecordHeaderBytes);
  EncodeClose(buf, 9, 1234, format::kRecordFlagFlushStart);
  DecodeResult d = DecodeRecord(buf, 9);
  ASSERT_EQ(d.outcome, DecodeOutcome::kRecord);
  EXPECT_EQ(d.record.type, format::kCloseType);
  EXPECT_EQ(d.record.sequence, 1234u);
  EXPECT_TRUE(d.record.key.empty());
  EXPECT_TRUE(d.record.value.empty());
  EXPECT_EQ(DecodeRecord(buf, 10).outcome, DecodeOutcome::kBadChecksum) << "seeded by segment";
}

TEST(RecordTest, LimitsNameTheLimit) {
  std::string big_key(format::kKeyBytesMax + 1, 'k');
  Status s = CheckKeyValueLimits(big_key, "v");
  ASSERT_TRUE(s.IsInvalidArgument());
  EXPECT_NE(s.message().find("kKeyBytesMax"), std::string_view::npos) << s.ToString();
  EXPECT_OK(CheckKeyValueLimits(std::string(format::kKeyBytesMax, 'k'), "v"));
  std::string big_value(format::kValueBytesMax + 1, 'v');
  EXPECT_TRUE(CheckKeyValueLimits("k", big_value).IsInvalidArgument());
}

TEST(SegmentHeaderTest, RoundTripAndCorruption) {
  SegmentHeader h;
  h.shard = 3;
  h.segment_id = 99;
  h.write_alignment_bytes = 4096;
  h.segment_size_bytes = 64u << 20;
  std::vector<uint8_t> buf(4096, 0);
  EncodeSegmentHeader(buf, h);
  auto d = DecodeSegmentHeader(buf, "x.seg");
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->shard, 3u);
  EXPECT_EQ(d->segment_id, 99u);
  buf[17] ^= 1;
  auto bad = DecodeSegmentHeader(buf, "x.seg");
  ASSERT_TRUE(bad.status().IsCorruption());
  EXPECT_NE(bad.status().message().find("x.seg"), std::string_view::npos);
}

TEST(BatchReaderTest, RejectsMalformedPayload) {
  std::string payload(4, '\0');
  payload[0] = 2;  // Declares two entries, has none.
  BatchReader reader(payload);
  EXPECT_TRUE(reader.Next().status().IsCorruption());
}

TEST(ShardingTest, HashTagsColocateKeys) {
  EXPECT_EQ(HashTagOf("user:{42}:name"), "42");
  EXPECT_EQ(HashTagOf("user:{}:name"), "user:{}:name");
  EXPECT_EQ(HashTagOf("plain"), "plain");
  for (uint32_t shards : {1u, 2u, 7u}) {
    EXPECT_EQ(ShardForKey("a{tag}b", shards), ShardForKey("{tag}zzz", shards));
    EXPECT_LT(ShardForKey("anything", shards), shards);
  }
}

}  // namespace
}  // namespace dmalog::engine

#include "dmalog/write_batch.h"

namespace dmalog::engine {
namespace {

TEST(WriteBatchTest, EncodesEntriesReadBackInOrder) {
  WriteBatch batch;
  ASSERT_OK(batch.Put("{u1}:a", "1"));
  ASSERT_OK(batch.Delete("{u1}:b"));
  ASSERT_OK(batch.Put("{u1}:c", std::string(1000, 'x')));
  EXPECT_EQ(batch.count(), 3u);
  EXPECT_EQ(batch.first_key(), "{u1}:a");
  BatchReader reader(batch.payload());
  ASSERT_EQ(*reader.Count(), 3u);
  auto e1 = reader.Next();
  ASSERT_TRUE(e1.ok());
  EXPECT_EQ(e1->type, format::kPutType);
  EXPECT_EQ(e1->key, "{u1}:a");
  EXPECT_EQ(e1->value, "1");
  auto e2 = reader.Next();
  EXPECT_EQ(e2->type, format::kDeleteType);
  auto e3 = reader.Next();
  EXPECT_EQ(e3->value.size(), 1000u);
  EXPECT_TRUE(reader.Next().status().IsNotFound());
}

TEST(WriteBatchTest, OversizedEntryLeavesBatchUnchanged) {
  WriteBatch batch;
  ASSERT_OK(batch.Put("k", "v"));
  const std::string before(batch.payload());
  EXPECT_TRUE(batch.Put(std::string(format::kKeyBytesMax + 1, 'k'), "v").IsInvalidArgument());
  EXPECT_EQ(batch.payload(), before);
  EXPECT_EQ(batch.count(), 1u);
}

}  // namespace
}  // namespace dmalog::engine
