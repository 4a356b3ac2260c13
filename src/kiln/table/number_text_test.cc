#include "kiln/table/number_text.h"

#include <gtest/gtest.h>

#include <bit>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "kiln/table/inference.h"

namespace kiln::table {
namespace {

// Texts every parse must agree on: the shapes the word parses take and every way to miss them.
std::vector<std::string> NotableTexts() {
  std::vector<std::string> texts = {
      "", "-", "+", ".", "-.", "+.", ".5", "5.", "-.5", "-5.", "+5", "+5.5", "+-5", "-+5", "--5",
      "0", "-0", "00", "-00.000", "0.0", "007", "0007.2500", "1e3", "1E3", "-2.5e-3", "1.2.3",
      "1..2", "12.", "nan", "inf", "-inf", "1 ", " 1", "1,5", "0x10", "5-", "9007199254740992",
      "9007199254740993", "900719925474099.3", "90071992547409.93", "9007199254740992.0",
      "1234567890123456", "12345678901234567", "123456789012345678", "1234567890123456789",
      "12345678901234567890", "-9223372036854775808", "9223372036854775807",
      "9999999999999999", "99999999.99999999", "0.000000000000001", "1.000000000000001",
      "822.465", "-822.465", "52.169", "1.823", "12345678", "1234567.8", "-1234567.8",
      "123456789", "12345678.9", "1234567.89", "0.1234567890123", std::string("1\0002", 3),
      std::string("12\0", 3), "1:2", "1/2", "9.:", "/1.5", "1.5/", ":1.5"};
  // Every length 1..25 of digits, with a '.', a sign and a bad byte at each position.
  for (size_t length = 1; length <= 25; ++length) {
    std::string digits;
    for (size_t i = 0; i < length; ++i) digits += static_cast<char>('1' + i % 9);
    texts.push_back(digits);
    texts.push_back("-" + digits);
    texts.push_back("+" + digits);
    texts.push_back(std::string(length, '0'));
    texts.push_back(std::string(length, '9'));
    for (size_t at = 0; at <= length; ++at) {
      std::string dotted = digits;
      dotted.insert(at, ".");
      texts.push_back(dotted);
      texts.push_back("-" + dotted);
    }
    for (size_t at = 0; at < length; ++at) {
      for (char bad : {'.', 'a', '/', ':', ' ', '-', '\0', '\xff', 'e'}) {
        std::string text = digits;
        text[at] = bad;
        texts.push_back(text);
        texts.push_back("-" + text);
        std::string decimal = digits + ".5";
        decimal[at] = bad;
        texts.push_back(decimal);
      }
    }
  }
  return texts;
}

// Random texts over digits and the bytes that matter, of every length up to 25.
std::vector<std::string> RandomTexts(size_t count) {
  static const std::string kAlphabet = "0123456789012345678901234567890123456789..--+eE /:";
  std::mt19937_64 random(20260101);
  std::vector<std::string> texts;
  for (size_t i = 0; i < count; ++i) {
    const size_t length = random() % 26;
    std::string text;
    for (size_t k = 0; k < length; ++k) text += kAlphabet[random() % kAlphabet.size()];
    texts.push_back(text);
  }
  return texts;
}

// The serial parse accepts everything the word parse does, with the same integer, count and
// sign; and the word parse takes every decimal of its shape (so the fast path is the one tested).
void ExpectDecimalWordsAgree(const std::string& text) {
  uint64_t word_digits = 0, serial_digits = 0;
  int word_fraction = 0, serial_fraction = 0;
  bool word_negative = false, serial_negative = false;
  const bool word = internal::ParseDecimalWords(text, &word_digits, &word_fraction, &word_negative);
  const bool serial =
      internal::ParseDecimalSerial(text, &serial_digits, &serial_fraction, &serial_negative);
  if (word) {
    ASSERT_TRUE(serial) << "'" << text << "'";
    EXPECT_EQ(word_digits, serial_digits) << "'" << text << "'";
    EXPECT_EQ(word_fraction, serial_fraction) << "'" << text << "'";
    EXPECT_EQ(word_negative, serial_negative) << "'" << text << "'";
  }
  const size_t unsigned_size = text.size() - (!text.empty() && text[0] == '-');
  if (serial && unsigned_size <= 16) {
    EXPECT_TRUE(word) << "'" << text << "'";
  }
}

void ExpectInt64WordsAgree(const std::string& text) {
  int64_t word_value = 0, serial_value = 0;
  const bool word = internal::ParseInt64Words(text, &word_value);
  const bool serial = internal::ParseInt64Serial(text, &serial_value);
  if (word) {
    ASSERT_TRUE(serial) << "'" << text << "'";
    EXPECT_EQ(word_value, serial_value) << "'" << text << "'";
  }
  const bool sign = !text.empty() && (text[0] == '-' || text[0] == '+');
  if (serial && text.size() - sign <= 16) {
    EXPECT_TRUE(word) << "'" << text << "'";
  }
}

// ParseNumericCell (inline word parses) and ParseCellValue give the same verdict and value.
void ExpectNumericCellAgrees(ColumnType type, const std::string& text) {
  bool fast_widen = false, general_widen = false;
  CellValue fast, general;
  const bool fast_fits = ParseNumericCell(type, text, &fast_widen, &fast);
  const bool general_fits = ParseCellValue(type, text, &general_widen, &general);
  ASSERT_EQ(fast_fits, general_fits) << "'" << text << "'";
  if (!fast_fits) return;
  EXPECT_EQ(fast_widen, general_widen) << "'" << text << "'";
  EXPECT_EQ(std::bit_cast<uint64_t>(fast.number), std::bit_cast<uint64_t>(general.number))
      << "'" << text << "'";
  if (type == ColumnType::kInt64 && !fast_widen) {
    EXPECT_EQ(fast.integer, general.integer) << "'" << text << "'";
  }
  if (type == ColumnType::kFloat64) {
    ShortDecimal parts;
    if (ParseShortDecimalParts(text, &parts)) {
      EXPECT_EQ(std::bit_cast<uint64_t>(ShortDecimalValue(parts)),
                std::bit_cast<uint64_t>(general.number))
          << "'" << text << "'";
    }
  }
}

TEST(NumberTextTest, WordParsesAgreeWithTheSerialParsesOnNotableTexts) {
  for (const std::string& text : NotableTexts()) {
    ExpectDecimalWordsAgree(text);
    ExpectInt64WordsAgree(text);
  }
}

TEST(NumberTextTest, WordParsesAgreeWithTheSerialParsesOnRandomTexts) {
  for (const std::string& text : RandomTexts(200000)) {
    ExpectDecimalWordsAgree(text);
    ExpectInt64WordsAgree(text);
  }
}

TEST(NumberTextTest, WordParsesReadShortDecimalsExactly) {
  struct Case {
    std::string text;
    uint64_t digits;
    int fraction_digits;
    bool negative;
  };
  const std::vector<Case> cases = {
      {"822.465", 822465, 3, false},   {"-1.823", 1823, 3, true},
      {"0", 0, 0, false},              {"-0.0", 0, 1, true},
      {"5", 5, 0, false},              {"12345678", 12345678, 0, false},
      {"1234567.8", 12345678, 1, false}, {"0.1234567890123", 1234567890123, 13, false},
      {"9007199254740992", 9007199254740992, 0, false},
      {"-123456789012.345", 123456789012345, 3, true},
  };
  for (const Case& test : cases) {
    uint64_t digits = 0;
    int fraction_digits = 0;
    bool negative = false;
    ASSERT_TRUE(internal::ParseDecimalWords(test.text, &digits, &fraction_digits, &negative))
        << test.text;
    EXPECT_EQ(digits, test.digits) << test.text;
    EXPECT_EQ(fraction_digits, test.fraction_digits) << test.text;
    EXPECT_EQ(negative, test.negative) << test.text;
  }
  uint64_t digits;
  int fraction_digits;
  bool negative;
  // Above 2^53 the division would not be one rounding: the general parse takes it.
  EXPECT_FALSE(internal::ParseDecimalWords("9007199254740993", &digits, &fraction_digits,
                                           &negative));
}

TEST(NumberTextTest, WordParsesReadOnlyTheTextsBytes) {
  // Each text sits at the very end of its own allocation: a read past it fails under ASan.
  for (const std::string& text : NotableTexts()) {
    if (text.empty()) continue;
    std::vector<char> exact(text.begin(), text.end());
    const std::string_view view(exact.data(), exact.size());
    uint64_t digits;
    int fraction_digits;
    bool negative;
    int64_t value;
    internal::ParseDecimalWords(view, &digits, &fraction_digits, &negative);
    internal::ParseInt64Words(view, &value);
  }
}

TEST(NumberTextTest, NumericCellEqualsParseCellValueForEveryType) {
  std::vector<std::string> texts = NotableTexts();
  for (const std::string& text : RandomTexts(50000)) texts.push_back(text);
  for (ColumnType type : {ColumnType::kInt64, ColumnType::kFloat64, ColumnType::kBool,
                          ColumnType::kTimestamp, ColumnType::kString}) {
    for (const std::string& text : texts) ExpectNumericCellAgrees(type, text);
  }
}

}  // namespace
}  // namespace kiln::table
