// Word-at-a-time (SWAR) parses of short decimal text, for the hot loops that read numeric cells.
// Internal to the table layer (inference.cc and its tests).
//
// Each parse reads up to 8 bytes of text with one or two loads that stay inside the text (a cell
// of 4..7 bytes is read as two overlapping 4-byte loads), then checks and converts 8 digits with a
// few 64-bit operations and no branch per byte. They accept a subset of what the serial parses in
// inference.cc accept and give the same integers; anything else returns false and the caller
// takes the serial path, so results never depend on which path ran.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace kiln::table::internal {

inline constexpr uint64_t kByteOnes = 0x0101010101010101ULL;
inline constexpr uint64_t kDecimalPowers[] = {1ULL,
                                              10ULL,
                                              100ULL,
                                              1000ULL,
                                              10000ULL,
                                              100000ULL,
                                              1000000ULL,
                                              10000000ULL,
                                              100000000ULL,
                                              1000000000ULL,
                                              10000000000ULL,
                                              100000000000ULL,
                                              1000000000000ULL,
                                              10000000000000ULL,
                                              100000000000000ULL,
                                              1000000000000000ULL,
                                              10000000000000000ULL};

// The powers of ten a double holds exactly.
inline constexpr double kExactPowersOfTen[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                               1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                               1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

// The first min(size, 8) bytes at `p` (size >= 1) as a little-endian word, the first byte lowest;
// the bytes above are unspecified (a short text's own bytes again). Reads only [p, p + size).
inline uint64_t LoadPrefix(const char* p, size_t size) {
  if (size >= 8) {
    uint64_t word;
    std::memcpy(&word, p, 8);
    return word;
  }
  if (size >= 4) {  // two overlapping loads: the bytes they share are equal
    uint32_t low, high;
    std::memcpy(&low, p, 4);
    std::memcpy(&high, p + size - 4, 4);
    return uint64_t{low} | (uint64_t{high} << (8 * (size - 4)));
  }
  const unsigned char* bytes = reinterpret_cast<const unsigned char*>(p);
  return uint64_t{bytes[0]} | (uint64_t{bytes[size / 2]} << (8 * (size / 2))) |
         (uint64_t{bytes[size - 1]} << (8 * (size - 1)));
}

// The value of the `count` (1..8) ASCII digits in the low bytes of `word` (the first, most
// significant digit in the lowest byte); false if one of them is not a digit. Bytes above `count`
// are ignored.
inline bool DigitsOfWord(uint64_t word, size_t count, uint64_t* value) {
  // Right-align the digits (the last one in the top byte) and fill the bytes below with '0'.
  const unsigned pad_bits = static_cast<unsigned>(8 * (8 - count));
  word = (word << pad_bits) | ((kByteOnes * '0') & ((uint64_t{1} << pad_bits) - 1));
  // Each byte is 0x30..0x39 iff its high nibble is 3 and adding 6 keeps it 3. A byte whose high
  // nibble is not 3 fails on its own, so a carry it makes into the next byte cannot hide a failure.
  constexpr uint64_t kHighNibbles = 0xF0F0F0F0F0F0F0F0ULL;
  const uint64_t check =
      (word & kHighNibbles) | (((word + kByteOnes * 6) & kHighNibbles) >> 4);
  if (check != kByteOnes * 0x33) return false;
  uint64_t digits = word - kByteOnes * '0';
  digits = digits * 10 + (digits >> 8);  // bytes 0, 2, 4, 6: two-digit numbers
  constexpr uint64_t kPairs = 0x000000FF000000FFULL;
  digits = ((digits & kPairs) * (100 + (1000000ULL << 32)) +
            ((digits >> 16) & kPairs) * (1 + (10000ULL << 32))) >>
           32;
  *value = digits;
  return true;
}

// The value of `size` (1..16) ASCII digits at `p`; false if one is not a digit.
inline bool ParseDigits(const char* p, size_t size, uint64_t* value) {
  if (size <= 8) return DigitsOfWord(LoadPrefix(p, size), size, value);
  uint64_t high, low;
  if (!DigitsOfWord(LoadPrefix(p, 8), 8, &high) ||
      !DigitsOfWord(LoadPrefix(p + 8, size - 8), size - 8, &low)) {
    return false;
  }
  *value = high * kDecimalPowers[size - 8] + low;
  return true;
}

// The index of the first '.' among the first min(size, 8) bytes of `word`, or 8 if none.
inline size_t DotIndex(uint64_t word, size_t size) {
  const uint64_t dots = word ^ (kByteOnes * '.');
  // The lowest flagged byte is a zero byte of `dots` (a borrow only flags bytes above a zero).
  uint64_t flags = (dots - kByteOnes) & ~dots & (kByteOnes * 0x80);
  if (size < 8) flags &= (uint64_t{1} << (8 * size)) - 1;
  return flags == 0 ? 8 : static_cast<size_t>(std::countr_zero(flags)) / 8;
}

// Text of the form [-]digits[.digits] with 1..16 bytes after the sign: the digits as one integer
// and how many of them follow the '.'. False for anything else (another sign, no digit before or
// after the '.', any other byte), or when the integer exceeds 2^53.
inline bool ParseDecimalWords(std::string_view text, uint64_t* digits, int* fraction_digits,
                              bool* negative) {
  if constexpr (std::endian::native != std::endian::little) return false;
  const char* p = text.data();
  size_t size = text.size();
  *negative = size != 0 && *p == '-';
  p += *negative;
  size -= *negative;
  if (size == 0 || size > 16) return false;
  const uint64_t first = LoadPrefix(p, size);
  size_t dot = DotIndex(first, size);  // 8: none in the first 8 bytes
  if (dot == 8 && size > 8) dot += DotIndex(LoadPrefix(p + 8, size - 8), size - 8);
  if (dot >= size) {  // no '.' (16, or 8 in a text of at most 8 bytes): all digits
    *fraction_digits = 0;
    if (!ParseDigits(p, size, digits)) return false;
  } else if (dot == 0 || dot + 1 == size) {
    return false;
  } else if (size <= 8) {
    // Drop the '.' byte: the bytes after it move down one; then all size - 1 must be digits.
    const uint64_t below = (uint64_t{1} << (8 * dot)) - 1;
    const uint64_t joined = (first & below) | ((first >> 8) & ~below);
    *fraction_digits = static_cast<int>(size - 1 - dot);
    if (!DigitsOfWord(joined, size - 1, digits)) return false;
  } else {
    uint64_t integer, fraction;
    const size_t fraction_size = size - 1 - dot;
    if (!ParseDigits(p, dot, &integer) || !ParseDigits(p + dot + 1, fraction_size, &fraction)) {
      return false;
    }
    *fraction_digits = static_cast<int>(fraction_size);
    *digits = integer * kDecimalPowers[fraction_size] + fraction;
  }
  return *digits <= (uint64_t{1} << 53);
}

// Text of the form [-|+]digits with 1..16 digits: its value. False for anything else.
inline bool ParseInt64Words(std::string_view text, int64_t* value) {
  if constexpr (std::endian::native != std::endian::little) return false;
  const char* p = text.data();
  size_t size = text.size();
  const bool negative = size != 0 && *p == '-';
  const bool sign = size != 0 && (*p == '-' || *p == '+');
  p += sign;
  size -= sign;
  if (size == 0 || size > 16) return false;
  uint64_t digits;
  if (!ParseDigits(p, size, &digits)) return false;
  *value = negative ? -static_cast<int64_t>(digits) : static_cast<int64_t>(digits);
  return true;
}

// The serial parses the word parses must agree with (and the fallback for what they leave).

// Text of the form [-]digits[.digits] with at most 19 digits, at most 22 after the '.', whose
// integer is at most 2^53: the integer, the count after the '.' and the sign; false otherwise.
inline bool ParseDecimalSerial(std::string_view text, uint64_t* digits, int* fraction_digits,
                               bool* negative) {
  const char* p = text.data();
  const char* end = p + text.size();
  *negative = p != end && *p == '-';
  if (*negative) ++p;
  const char* integer_start = p;
  uint64_t value = 0;
  while (p != end && static_cast<unsigned>(*p - '0') < 10)
    value = value * 10 + static_cast<unsigned>(*p++ - '0');
  const ptrdiff_t integer_digits = p - integer_start;
  ptrdiff_t fraction = 0;
  if (p != end && *p == '.') {
    const char* fraction_start = ++p;
    while (p != end && static_cast<unsigned>(*p - '0') < 10)
      value = value * 10 + static_cast<unsigned>(*p++ - '0');
    fraction = p - fraction_start;
    if (fraction == 0) return false;
  }
  // At most 19 digits cannot overflow 64 bits.
  if (p != end || integer_digits == 0 || integer_digits + fraction > 19 ||
      value > (uint64_t{1} << 53) || fraction > 22) {
    return false;
  }
  *digits = value;
  *fraction_digits = static_cast<int>(fraction);
  return true;
}

// Text of the form [-|+]digits with at most 18 digits (which always fit): its value; false
// otherwise.
inline bool ParseInt64Serial(std::string_view text, int64_t* value) {
  const char* p = text.data();
  const char* end = p + text.size();
  const bool negative = p != end && *p == '-';
  if (p != end && (*p == '-' || *p == '+')) ++p;
  if (p == end || end - p > 18) return false;
  uint64_t digits = 0;
  for (; p != end; ++p) {
    const unsigned digit = static_cast<unsigned>(*p - '0');
    if (digit >= 10) return false;
    digits = digits * 10 + digit;
  }
  *value = negative ? -static_cast<int64_t>(digits) : static_cast<int64_t>(digits);
  return true;
}

}  // namespace kiln::table::internal
