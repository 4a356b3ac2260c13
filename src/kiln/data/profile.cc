#include "kiln/data/profile.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <cassert>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>
#include <mutex>
#include <optional>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "kiln/core/hash.h"
#include "kiln/table/inference.h"

// How the statistics stay independent of the chunking (the same JSON whatever the thread count):
//
// - Sample: every row gets a key, a bijective mix of (seed, the row's line number in the file),
//   and a column's sample is the values of the sample_size rows with the smallest keys among the
//   rows where it has a value (a bottom-k sample: uniform, and the bottom-k of a union is the
//   bottom-k of the parts' bottom-k). Line numbers are global because every chunk's reader is
//   told its first line (ReadOptions::first_line), so rows need no global index. The candidates
//   are kept per row for all numeric columns at once (see RowSample).
// - Mean and std: floating-point sums depend on the order of addition, so the builder keeps the
//   sums of values and of squares EXACTLY (integers in fixed point: a double is an integer
//   multiple of 2^-1074, a square of 2^-2148), per binary exponent in the hot loop and folded into
//   wide integers at merge and finish. Exact sums merge in any order; the variance is computed
//   from them without cancellation: (n*S2 - S1^2) / (n(n-1)).
// - Min, max, counts and category counts are order-independent (category counts up to the cap).
namespace kiln::data {
namespace {

__extension__ typedef __int128 Int128;
__extension__ typedef unsigned __int128 Uint128;

constexpr size_t kMaxDistinct = 100000;
constexpr size_t kTopCategories = 20;
constexpr int kHistogramBins = 10;
constexpr std::array<double, 9> kQuantiles = {0, 0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99, 1};
constexpr std::array<const char*, 9> kQuantileNames = {"0",    "0.01", "0.05", "0.25", "0.5",
                                                       "0.75", "0.95", "0.99", "1"};

constexpr uint64_t kMixAdd = 0x9e3779b97f4a7c15ULL;
constexpr uint64_t kMixFirst = 0xbf58476d1ce4e5b9ULL;
constexpr uint64_t kMixSecond = 0x94d049bb133111ebULL;

constexpr uint64_t Mix(uint64_t x) {  // splitmix64's finalizer: a bijection of 64-bit integers
  x += kMixAdd;
  x = (x ^ (x >> 30)) * kMixFirst;
  x = (x ^ (x >> 27)) * kMixSecond;
  return x ^ (x >> 31);
}

// The inverse of an odd number modulo 2^64 (Newton's iteration doubles the correct low bits).
constexpr uint64_t InverseOf(uint64_t odd) {
  uint64_t inverse = odd;  // correct to 3 bits
  for (int i = 0; i < 5; ++i) inverse *= 2 - odd * inverse;
  return inverse;
}

// The x with y == x ^ (x >> shift).
constexpr uint64_t UndoShiftXor(uint64_t y, int shift) {
  uint64_t x = y;
  for (int i = 0; i < 64 / shift; ++i) x = y ^ (x >> shift);
  return x;
}

// Mix's inverse: saved samples store line numbers, which are smaller than keys.
constexpr uint64_t Unmix(uint64_t x) {
  x = UndoShiftXor(x, 31);
  x = UndoShiftXor(x * InverseOf(kMixSecond), 27);
  x = UndoShiftXor(x * InverseOf(kMixFirst), 30);
  return x - kMixAdd;
}
static_assert(Unmix(Mix(0)) == 0 && Unmix(Mix(12345)) == 12345 && Unmix(Mix(~0ULL)) == ~0ULL);

// A two's complement integer of 72 64-bit limbs: wide enough for n * (sum of squares) and the
// square of the sum of any double values (units 2^-2148 up to 2^2048, times n < 2^63).
class WideInt {
 public:
  static constexpr size_t kLimbs = 72;

  // Adds (or subtracts) `magnitude` * 2^shift.
  void AddShifted(Uint128 magnitude, int shift, bool negative) {
    size_t limb = static_cast<size_t>(shift / 64);
    int bit = shift % 64;
    uint64_t low = static_cast<uint64_t>(magnitude);
    uint64_t high = static_cast<uint64_t>(magnitude >> 64);
    std::array<uint64_t, 3> parts = {low, high, 0};
    if (bit != 0) {
      parts = {low << bit, (high << bit) | (low >> (64 - bit)), high >> (64 - bit)};
    }
    if (!negative) {
      uint64_t carry = 0;
      for (size_t i = limb; i < kLimbs; ++i) {
        uint64_t add = i - limb < 3 ? parts[i - limb] : 0;
        if (add == 0 && carry == 0 && i - limb >= 3) break;
        Uint128 sum = static_cast<Uint128>(limbs_[i]) + add + carry;
        limbs_[i] = static_cast<uint64_t>(sum);
        carry = static_cast<uint64_t>(sum >> 64);
      }
    } else {
      uint64_t borrow = 0;
      for (size_t i = limb; i < kLimbs; ++i) {
        uint64_t sub = i - limb < 3 ? parts[i - limb] : 0;
        if (sub == 0 && borrow == 0 && i - limb >= 3) break;
        Uint128 difference = static_cast<Uint128>(limbs_[i]) - sub - borrow;
        limbs_[i] = static_cast<uint64_t>(difference);
        borrow = (difference >> 64) != 0 ? 1 : 0;  // wrapped below zero
      }
    }
  }

  void Add(const WideInt& other) {
    uint64_t carry = 0;
    for (size_t i = 0; i < kLimbs; ++i) {
      Uint128 sum = static_cast<Uint128>(limbs_[i]) + other.limbs_[i] + carry;
      limbs_[i] = static_cast<uint64_t>(sum);
      carry = static_cast<uint64_t>(sum >> 64);
    }
  }

  void Subtract(const WideInt& other) {
    WideInt negated = other;
    negated.Negate();
    Add(negated);
  }

  bool IsNegative() const { return (limbs_[kLimbs - 1] >> 63) != 0; }

  void Negate() {
    uint64_t carry = 1;
    for (uint64_t& limb : limbs_) {
      Uint128 sum = static_cast<Uint128>(~limb) + carry;
      limb = static_cast<uint64_t>(sum);
      carry = static_cast<uint64_t>(sum >> 64);
    }
  }

  void MultiplySmall(uint64_t factor) {
    uint64_t carry = 0;
    for (uint64_t& limb : limbs_) {
      Uint128 product = static_cast<Uint128>(limb) * factor + carry;
      limb = static_cast<uint64_t>(product);
      carry = static_cast<uint64_t>(product >> 64);
    }
  }

  // The square of a non-negative value (truncated to kLimbs, which the sizes above never reach).
  WideInt Square() const {
    WideInt out;
    for (size_t i = 0; i < kLimbs; ++i) {
      if (limbs_[i] == 0) continue;
      uint64_t carry = 0;
      for (size_t j = 0; i + j < kLimbs; ++j) {
        Uint128 product = static_cast<Uint128>(limbs_[i]) * limbs_[j] + out.limbs_[i + j] + carry;
        out.limbs_[i + j] = static_cast<uint64_t>(product);
        carry = static_cast<uint64_t>(product >> 64);
      }
    }
    return out;
  }

  uint64_t limb(size_t index) const { return limbs_[index]; }
  void set_limb(size_t index, uint64_t value) { limbs_[index] = value; }

  // value * 2^unit_exponent / divisor, rounded once from the top 64 bits (with a sticky bit)
  // and once by the division: deterministic, which is what the profile needs.
  double ToDouble(int unit_exponent, double divisor = 1.0) const {
    WideInt magnitude = *this;
    bool negative = IsNegative();
    if (negative) magnitude.Negate();
    int top = -1;
    for (int i = static_cast<int>(kLimbs) - 1; i >= 0; --i) {
      if (magnitude.limbs_[static_cast<size_t>(i)] != 0) {
        top = i;
        break;
      }
    }
    if (top < 0) return 0.0;
    const auto& limbs = magnitude.limbs_;
    uint64_t high = limbs[static_cast<size_t>(top)];
    uint64_t next = top > 0 ? limbs[static_cast<size_t>(top - 1)] : 0;
    int zeros = std::countl_zero(high);
    uint64_t bits = zeros == 0 ? high : (high << zeros) | (next >> (64 - zeros));
    bool sticky = zeros != 0 && (next << zeros) != 0;
    if (zeros == 0) sticky = next != 0;
    for (int i = top - 2; i >= 0 && !sticky; --i) sticky = limbs[static_cast<size_t>(i)] != 0;
    if (sticky) bits |= 1;  // 64 bits hold 11 below the double's 53: bit 0 acts as sticky
    double value =
        std::ldexp(static_cast<double>(bits) / divisor, 64 * top - zeros + unit_exponent);
    return negative ? -value : value;
  }

 private:
  std::array<uint64_t, kLimbs> limbs_{};
};

// Exact sums of finite doubles and of their squares. The hot path adds the 53-bit mantissa (and
// its 106-bit square) into a slot per binary exponent; slots cover only the exponents seen.
class ExactSums {
 public:
  void Add(double value) {
    uint64_t bits = std::bit_cast<uint64_t>(value);
    uint32_t exponent = static_cast<uint32_t>(bits >> 52) & 0x7ff;
    uint64_t mantissa = bits & ((uint64_t{1} << 52) - 1);
    if (exponent != 0) mantissa |= uint64_t{1} << 52;
    uint32_t index = exponent - base_;
    if (index >= slots_.size()) [[unlikely]] {
      Grow(exponent);
      index = exponent - base_;
    }
    Slot& slot = slots_[index];
    Int128 signed_mantissa = static_cast<Int128>(mantissa);
    slot.sum += (bits >> 63) != 0 ? -signed_mantissa : signed_mantissa;
    slot.squares += static_cast<Uint128>(mantissa) * mantissa;
    // A slot holds 2^21 squares of up to 2^106 before it could overflow.
    if (++pending_squares_ == (uint64_t{1} << 21)) [[unlikely]]
      FlushSquares();
  }

  // Takes back a value added before (or restored in the totals): exact, like Add.
  void Remove(double value) {
    uint64_t bits = std::bit_cast<uint64_t>(value);
    uint32_t exponent = static_cast<uint32_t>(bits >> 52) & 0x7ff;
    uint64_t mantissa = bits & ((uint64_t{1} << 52) - 1);
    if (exponent != 0) mantissa |= uint64_t{1} << 52;
    const int shift = Shift(exponent);
    sum_total_.AddShifted(mantissa, shift, (bits >> 63) == 0);
    square_total_.AddShifted(static_cast<Uint128>(mantissa) * mantissa, 2 * shift, true);
  }

  // Sums restored from saved totals (Sum() and SumOfSquares() of the saved builder).
  static ExactSums FromTotals(const WideInt& sum, const WideInt& squares) {
    ExactSums sums;
    sums.sum_total_ = sum;
    sums.square_total_ = squares;
    return sums;
  }

  void Merge(ExactSums&& other) {
    other.FlushSquares();
    FlushSquares();
    sum_total_.Add(other.sum_total_);
    square_total_.Add(other.square_total_);
    for (size_t i = 0; i < other.slots_.size(); ++i) {
      if (other.slots_[i].sum == 0) continue;
      uint32_t exponent = other.base_ + static_cast<uint32_t>(i);
      if (exponent - base_ >= slots_.size()) Grow(exponent);
      // A slot's sum holds 2^74 mantissas: no overflow.
      slots_[exponent - base_].sum += other.slots_[i].sum;
    }
  }

  // Σx in units of 2^-1074.
  WideInt Sum() const {
    WideInt total = sum_total_;
    for (size_t i = 0; i < slots_.size(); ++i) {
      Int128 sum = slots_[i].sum;
      if (sum == 0) continue;
      bool negative = sum < 0;
      Uint128 magnitude = negative ? -static_cast<Uint128>(sum) : static_cast<Uint128>(sum);
      total.AddShifted(magnitude, Shift(base_ + static_cast<uint32_t>(i)), negative);
    }
    return total;
  }

  // Σx² in units of 2^-2148.
  WideInt SumOfSquares() const {
    WideInt total = square_total_;
    for (size_t i = 0; i < slots_.size(); ++i) {
      if (slots_[i].squares != 0) {
        total.AddShifted(slots_[i].squares, 2 * Shift(base_ + static_cast<uint32_t>(i)), false);
      }
    }
    return total;
  }

 private:
  struct Slot {
    Int128 sum = 0;       // signed mantissas
    Uint128 squares = 0;  // squared mantissas since the last flush
  };

  // A biased exponent E >= 1 weighs 2^(E-1075) = 2^-1074 * 2^(E-1); subnormals (E = 0) 2^-1074.
  static int Shift(uint32_t exponent) { return exponent == 0 ? 0 : static_cast<int>(exponent) - 1; }

  void Grow(uint32_t exponent) {
    uint32_t low = exponent, high = exponent;
    if (!slots_.empty()) {
      low = std::min(low, base_);
      high = std::max(high, base_ + static_cast<uint32_t>(slots_.size()) - 1);
    }
    low = low >= 4 ? low - 4 : 0;  // a little room: neighbouring exponents are likely
    high = std::min<uint32_t>(high + 4, 2047);
    std::vector<Slot> slots(high - low + 1);
    for (size_t i = 0; i < slots_.size(); ++i) slots[base_ + i - low] = slots_[i];
    slots_ = std::move(slots);
    base_ = low;
  }

  void FlushSquares() {
    for (size_t i = 0; i < slots_.size(); ++i) {
      if (slots_[i].squares == 0) continue;
      square_total_.AddShifted(slots_[i].squares, 2 * Shift(base_ + static_cast<uint32_t>(i)),
                               false);
      slots_[i].squares = 0;
    }
    pending_squares_ = 0;
  }

  uint32_t base_ = 0;
  std::vector<Slot> slots_;
  uint64_t pending_squares_ = 0;
  WideInt sum_total_;  // merged from restored sums
  WideInt square_total_;
};

// Sorts values (no NaN) ascending in IEEE total order, -0 before +0: with operator< the order of
// -0 and +0 would follow the input's, which depends on the chunking. An LSD radix sort on the
// order-preserving bit pattern (11 bits a pass, passes where every value has the same digit
// skipped): several times faster than std::sort on the 100,000 values of a full sample.
void SortTotalOrder(std::vector<double>& values) {
  constexpr uint64_t kSign = uint64_t{1} << 63;
  std::vector<uint64_t> keys(values.size());
  for (size_t i = 0; i < values.size(); ++i) {
    const uint64_t bits = std::bit_cast<uint64_t>(values[i]);
    keys[i] = (bits & kSign) != 0 ? ~bits : bits | kSign;
  }
  if (keys.size() < 256) {
    std::sort(keys.begin(), keys.end());
  } else {
    constexpr int kDigitBits = 11;
    constexpr int kPasses = (64 + kDigitBits - 1) / kDigitBits;
    constexpr size_t kBuckets = size_t{1} << kDigitBits;
    std::vector<size_t> counts(kPasses * kBuckets, 0);
    for (uint64_t key : keys) {
      for (int pass = 0; pass < kPasses; ++pass) {
        ++counts[pass * kBuckets + ((key >> (pass * kDigitBits)) & (kBuckets - 1))];
      }
    }
    std::vector<uint64_t> scratch(keys.size());
    for (int pass = 0; pass < kPasses; ++pass) {
      size_t* pass_counts = &counts[pass * kBuckets];
      const int shift = pass * kDigitBits;
      if (pass_counts[(keys[0] >> shift) & (kBuckets - 1)] == keys.size()) continue;
      size_t offset = 0;
      for (size_t bucket = 0; bucket < kBuckets; ++bucket) {
        const size_t count = pass_counts[bucket];
        pass_counts[bucket] = offset;
        offset += count;
      }
      for (uint64_t key : keys) scratch[pass_counts[(key >> shift) & (kBuckets - 1)]++] = key;
      keys.swap(scratch);
    }
  }
  for (size_t i = 0; i < values.size(); ++i) {
    const uint64_t key = keys[i];
    values[i] = std::bit_cast<double>((key & kSign) != 0 ? key & ~kSign : ~key);
  }
}

// Bottom-k samples of every numeric column, kept as candidate rows: a row's key and one value per
// numeric column (NaN where the column has no value). Column c's sample is the values of its k
// smallest keys among rows where it has a value; once a column has more than k such candidates,
// limit_c is its k-th smallest key and a row is kept only if some column it has a value in needs
// it (key <= limit_c). One key check per row rejects most rows once the limits are set.
//
// A part saved with key limits L_c (Serialize) keeps only the values with keys below their
// column's L_c, and the rows keeping one; a column that lost a value that way records its L_c
// (saved_limits_), and its merged sample is exact only if it has sample_size values with keys
// below the smallest L_c recorded. A part limited from the start (LimitKeys) never keeps a row
// whose values all have keys at or above their column's limit: what it saves with limits at most
// those is what the unlimited part saves.
class RowSample {
 public:
  static constexpr uint64_t kUnlimited = std::numeric_limits<uint64_t>::max();

  RowSample(size_t width, size_t capacity)
      : width_(width),
        capacity_(capacity),
        limits_(width, kUnlimited),
        saved_limits_(width, kUnlimited),
        next_compaction_(std::max<size_t>(2 * capacity, 1024)) {}

  static bool Below(uint64_t key, uint64_t limit) { return key < limit || limit == kUnlimited; }

  size_t width() const { return width_; }
  size_t capacity() const { return capacity_; }
  const std::vector<uint64_t>& saved_limits() const { return saved_limits_; }
  uint64_t key(size_t row) const { return keys_[row]; }
  const double* values(size_t row) const { return &values_[row * width_]; }

  // True if a part saved with per-column key limits `limits` keeps row `row`'s value in column
  // c: one its column may need, below the column's limit (kUnlimited keeps all).
  bool Keeps(size_t row, size_t c, const std::vector<uint64_t>& limits) const {
    const uint64_t key = keys_[row];
    return !std::isnan(values_[row * width_ + c]) && key <= limits_[c] && Below(key, limits[c]);
  }
  // The rows a part saved with per-column key limits `limits` keeps (those it keeps a value of:
  // Keeps), and (in *saved_limits) the saved limits it records. kUnlimited keeps every value
  // of its column that the column may need.
  std::vector<size_t> KeptRows(const std::vector<uint64_t>& limits,
                               std::vector<uint64_t>* saved_limits) const {
    *saved_limits = SavedLimits(&limits);
    std::vector<size_t> kept;
    for (size_t row = 0; row < keys_.size(); ++row) {
      const uint64_t key = keys_[row];
      const double* row_values = values(row);
      bool keeps = false;
      for (size_t c = 0; c < width_; ++c) {
        // A value above limits_[c] is pruned, not dropped: a compaction showed the column has
        // sample_size values with smaller keys.
        if (std::isnan(row_values[c]) || key > limits_[c]) continue;
        if (Below(key, limits[c])) {
          keeps = true;
        } else {
          (*saved_limits)[c] = std::min((*saved_limits)[c], limits[c]);
        }
      }
      if (keeps) kept.push_back(row);
    }
    return kept;
  }

  // Restores saved candidates (keys_.size() * width_ values) into an empty sample.
  void Restore(std::vector<uint64_t> keys, std::vector<double> values,
               std::vector<uint64_t> saved_limits) {
    assert(keys_.empty() && values.size() == keys.size() * width_);
    keys_ = std::move(keys);
    values_ = std::move(values);
    saved_limits_ = std::move(saved_limits);
    if (keys_.size() >= next_compaction_) Compact();
  }

  // True once a compaction or a key limit set limits (candidates were pruned).
  bool Compacted() const { return largest_limit_ != kUnlimited; }

  // Keeps only values with keys below their column's limit from now on (LimitSample); the sample
  // must be empty. A row with none is dropped (Offer), and a column that loses a value counts as
  // saved with its limit: SavedLimits() folds them in as KeptRows records what it drops.
  void LimitKeys(std::vector<uint64_t> limits) {
    assert(keys_.empty() && limits.size() == width_);
    key_limits_ = std::move(limits);
    largest_limit_ = 0;
    smallest_key_limit_ = kUnlimited;
    for (size_t c = 0; c < width_; ++c) {
      if (key_limits_[c] != kUnlimited) limits_[c] = std::min(limits_[c], key_limits_[c] - 1);
      largest_limit_ = std::max(largest_limit_, limits_[c]);
      smallest_key_limit_ = std::min(smallest_key_limit_, key_limits_[c]);
    }
    dropped_.assign(width_, 0);
    undropped_ = width_;
  }
  // A row (its key and one value per column, NaN for none): a candidate if some column may need
  // it, else dropped; a value at or above its column's key limit is noted as dropped.
  void Offer(uint64_t key, const double* values) {
    if (key >= smallest_key_limit_ && undropped_ != 0) NoteDropped(key, values);
    if (MayNeed(key) && Needed(key, values)) Append(key, values);
  }
  // The saved limits of a part saved with per-column `limits` (none: kUnlimited): saved_limits_,
  // and for the columns that lost a value to their key limit that limit (or the saving one, if
  // lower), as a part that kept those values and dropped them on saving records.
  std::vector<uint64_t> SavedLimits(const std::vector<uint64_t>* limits = nullptr) const {
    std::vector<uint64_t> saved = saved_limits_;
    for (size_t c = 0; c < dropped_.size(); ++c) {
      if (!dropped_[c]) continue;
      saved[c] = std::min(saved[c], key_limits_[c]);
      if (limits != nullptr) saved[c] = std::min(saved[c], (*limits)[c]);
    }
    return saved;
  }
  // Removes the candidate with this key; false if there is none.
  bool RemoveKey(uint64_t key) {
    auto it = std::find(keys_.begin(), keys_.end(), key);
    if (it == keys_.end()) return false;
    const size_t row = static_cast<size_t>(it - keys_.begin());
    keys_.erase(it);
    auto values_begin = values_.begin() + static_cast<std::ptrdiff_t>(row * width_);
    values_.erase(values_begin, values_begin + static_cast<std::ptrdiff_t>(width_));
    return true;
  }
  // Candidates holding a value in column c.
  int64_t CandidatesWithValue(size_t c) const {
    int64_t count = 0;
    for (size_t row = 0; row < keys_.size(); ++row) count += !std::isnan(values_[row * width_ + c]);
    return count;
  }
  void SetSavedLimit(size_t c, uint64_t limit) { saved_limits_[c] = limit; }

  // True if every column's sample is what a sample that dropped nothing would hold.
  bool Exact() const {
    const std::vector<uint64_t> saved = SavedLimits();
    for (size_t c = 0; c < width_; ++c) {
      const uint64_t limit = saved[c];
      if (limit == kUnlimited || capacity_ == 0) continue;
      size_t below = 0;  // candidates with a value and a key below the limit
      for (size_t row = 0; row < keys_.size() && below < capacity_; ++row) {
        below += keys_[row] < limit && !std::isnan(values_[row * width_ + c]);
      }
      if (below < capacity_) return false;
    }
    return true;
  }

  // True if a row with this key may be needed; then call Needed with its values.
  bool MayNeed(uint64_t key) const { return key <= largest_limit_ && capacity_ > 0; }
  bool Needed(uint64_t key, const double* values) const {
    for (size_t c = 0; c < width_; ++c) {
      if (!std::isnan(values[c]) && key <= limits_[c]) return true;
    }
    return false;
  }
  void Append(uint64_t key, const double* values) {
    if (keys_.capacity() == 0) {
      keys_.reserve(4096);
      values_.reserve(4096 * width_);
    }
    keys_.push_back(key);
    for (size_t c = 0; c < width_; ++c) values_.push_back(values[c]);
    if (keys_.size() >= next_compaction_) Compact();
  }

  void Merge(RowSample&& other) {
    const std::vector<uint64_t> other_saved = other.SavedLimits();
    for (size_t c = 0; c < width_; ++c) {
      saved_limits_[c] = std::min(saved_limits_[c], other_saved[c]);
    }
    if (keys_.empty() && largest_limit_ == kUnlimited) {
      std::swap(keys_, other.keys_);
      std::swap(values_, other.values_);
    } else if (largest_limit_ == kUnlimited) {    // no limits yet: every row is a candidate
      if (keys_.capacity() < next_compaction_) {  // grow once, not by doubling
        keys_.reserve(next_compaction_);
        values_.reserve(next_compaction_ * width_);
      }
      keys_.insert(keys_.end(), other.keys_.begin(), other.keys_.end());
      values_.insert(values_.end(), other.values_.begin(), other.values_.end());
    } else {
      for (size_t row = 0; row < other.keys_.size(); ++row) {
        const uint64_t key = other.keys_[row];
        const double* values = &other.values_[row * width_];
        Offer(key, values);
      }
      return;
    }
    if (keys_.size() >= next_compaction_) Compact();
  }

  // The k-th smallest key over all rows: it bounds the samples of columns with a value in every
  // row (none when every row is a candidate).
  std::optional<uint64_t> FullLimit() const {
    if (keys_.size() <= capacity_ || capacity_ == 0) return std::nullopt;
    std::vector<uint64_t> keys = keys_;
    std::nth_element(keys.begin(), keys.begin() + static_cast<std::ptrdiff_t>(capacity_ - 1),
                     keys.end());
    return keys[capacity_ - 1];
  }

  // Column c's sample, sorted; `full_limit` is FullLimit().
  std::vector<double> SortedSample(size_t c, std::optional<uint64_t> full_limit) const {
    std::vector<double> sample;
    bool partial = false;
    sample.reserve(std::min(keys_.size(), capacity_));
    for (size_t row = 0; row < keys_.size() && !partial; ++row) {
      double value = values_[row * width_ + c];
      if (std::isnan(value)) {
        partial = true;
      } else if (!full_limit || keys_[row] <= *full_limit) {
        sample.push_back(value);
      }
    }
    if (partial) {
      std::vector<std::pair<uint64_t, double>> entries;
      for (size_t row = 0; row < keys_.size(); ++row) {
        double value = values_[row * width_ + c];
        if (!std::isnan(value)) entries.emplace_back(keys_[row], value);
      }
      if (entries.size() > capacity_) {
        std::nth_element(entries.begin(),
                         entries.begin() + static_cast<std::ptrdiff_t>(capacity_), entries.end(),
                         [](const auto& a, const auto& b) { return a.first < b.first; });
        entries.resize(capacity_);
      }
      sample.clear();
      for (const auto& entry : entries) sample.push_back(entry.second);
    }
    SortTotalOrder(sample);
    return sample;
  }

 private:
  void Compact() {
    // Columns with a value in every row share one selection; the others get their own.
    std::vector<std::vector<uint64_t>> keys(width_);  // per column, of the rows with a value
    std::vector<uint8_t> partial(width_, 0);
    for (size_t row = 0; row < keys_.size(); ++row) {
      const double* values = &values_[row * width_];
      for (size_t c = 0; c < width_; ++c) {
        if (std::isnan(values[c]) && !partial[c]) {
          partial[c] = 1;
          keys[c].assign(keys_.begin(), keys_.begin() + static_cast<std::ptrdiff_t>(row));
        } else if (partial[c] && !std::isnan(values[c])) {
          keys[c].push_back(keys_[row]);
        }
      }
    }
    auto kth_smallest = [&](std::vector<uint64_t>& candidates) {
      std::nth_element(candidates.begin(),
                       candidates.begin() + static_cast<std::ptrdiff_t>(capacity_ - 1),
                       candidates.end());
      return candidates[capacity_ - 1];
    };
    std::optional<uint64_t> full_limit;
    for (size_t c = 0; c < width_; ++c) {
      if (partial[c]) {
        if (keys[c].size() > capacity_) limits_[c] = std::min(limits_[c], kth_smallest(keys[c]));
        continue;
      }
      if (keys_.size() <= capacity_) continue;
      if (!full_limit) {
        std::vector<uint64_t> all = keys_;
        full_limit = kth_smallest(all);
      }
      limits_[c] = std::min(limits_[c], *full_limit);
    }
    largest_limit_ = *std::max_element(limits_.begin(), limits_.end());
    size_t kept = 0;
    for (size_t row = 0; row < keys_.size(); ++row) {
      const double* values = &values_[row * width_];
      if (!Needed(keys_[row], values)) continue;
      keys_[kept] = keys_[row];
      std::copy(values, values + width_,
                values_.begin() + static_cast<std::ptrdiff_t>(kept * width_));
      ++kept;
    }
    keys_.resize(kept);
    values_.resize(kept * width_);
    // Columns with few values keep their rows: compact again only once the rows have doubled.
    next_compaction_ = std::max(2 * capacity_, 2 * kept);
  }

  size_t width_;
  size_t capacity_;
  std::vector<uint64_t> keys_;
  std::vector<double> values_;  // row-major, width_ per row
  std::vector<uint64_t> limits_;
  std::vector<uint64_t> saved_limits_;  // per column: the smallest key limit that dropped any
  uint64_t largest_limit_ = kUnlimited;
  size_t next_compaction_;
  void NoteDropped(uint64_t key, const double* values) {
    for (size_t c = 0; c < width_; ++c) {
      if (!dropped_[c] && key >= key_limits_[c] && !std::isnan(values[c])) {
        dropped_[c] = 1;
        --undropped_;
      }
    }
  }

  // LimitKeys: per column, values with keys at or above it are dropped (empty: no limits)
  std::vector<uint64_t> key_limits_;
  uint64_t smallest_key_limit_ = kUnlimited;
  std::vector<uint8_t> dropped_;  // LimitKeys: per column, a value was dropped
  size_t undropped_ = 0;          // LimitKeys: columns with no value dropped yet (0: none to
                                  // note, also without limits)
};

struct NumericStats {
  int64_t nan = 0;
  int64_t positive_infinities = 0;
  int64_t negative_infinities = 0;
  int64_t finite = 0;
  double finite_min = std::numeric_limits<double>::infinity();
  double finite_max = -std::numeric_limits<double>::infinity();
  int64_t int_min = std::numeric_limits<int64_t>::max();  // int64 columns: exact bounds
  int64_t int_max = std::numeric_limits<int64_t>::min();
  ExactSums sums;
  size_t sample_slot = 0;  // this column's place in the row sample
};

struct TransparentHash {
  using is_transparent = void;
  size_t operator()(std::string_view text) const { return std::hash<std::string_view>{}(text); }
};

// Exact value counts up to kMaxDistinct distinct values; later new values are not counted.
struct CategoryStats {
  struct Entry {
    int64_t count = 0;
    uint64_t order = 0;  // first appearance, so merges add new values in row order
  };
  std::unordered_map<std::string, Entry, TransparentHash, std::equal_to<>> counts;
  uint64_t next_order = 0;
  bool exact = true;
  int64_t min_length = std::numeric_limits<int64_t>::max();  // string columns, in code points
  int64_t max_length = -1;

  void Add(std::string_view value, int64_t times = 1) {
    auto it = counts.find(value);
    if (it != counts.end()) {
      it->second.count += times;
    } else if (counts.size() < kMaxDistinct) {
      counts.emplace(std::string(value), Entry{times, next_order++});
    } else {
      exact = false;
    }
  }
};

struct TimestampStats {
  int64_t min = std::numeric_limits<int64_t>::max();
  int64_t max = std::numeric_limits<int64_t>::min();
};

struct ColumnStats {
  table::ColumnType type = table::ColumnType::kString;
  int64_t count = 0;  // non-null
  int64_t nulls = 0;
  std::unique_ptr<NumericStats> numeric;
  std::unique_ptr<CategoryStats> categories;
  std::unique_ptr<TimestampStats> timestamps;
};

int64_t CodePoints(std::string_view text) {
  int64_t count = 0;
  for (char c : text) count += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return count;
}

// A string cell: its length in code points and its category count.
void AddString(CategoryStats& categories, std::string_view text) {
  const int64_t length = CodePoints(text);
  categories.min_length = std::min(categories.min_length, length);
  categories.max_length = std::max(categories.max_length, length);
  categories.Add(text);
}

// Days since 1970-01-01 to a civil date (proleptic Gregorian), after H. Hinnant's algorithm.
void CivilFromDays(int64_t days, int64_t* year, int* month, int* day) {
  days += 719468;
  int64_t era = (days >= 0 ? days : days - 146096) / 146097;
  int64_t day_of_era = days - era * 146097;
  int64_t year_of_era =
      (day_of_era - day_of_era / 1460 + day_of_era / 36524 - day_of_era / 146096) / 365;
  int64_t day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
  int64_t shifted_month = (5 * day_of_year + 2) / 153;
  *day = static_cast<int>(day_of_year - (153 * shifted_month + 2) / 5 + 1);
  *month = static_cast<int>(shifted_month < 10 ? shifted_month + 3 : shifted_month - 9);
  *year = year_of_era + era * 400 + (*month <= 2 ? 1 : 0);
}

// "2026-11-01T12:00:00Z", with ".123" before the Z when the milliseconds are not zero.
std::string FormatTimestamp(int64_t millis) {
  int64_t days = millis >= 0 ? millis / 86400000 : -((-millis + 86399999) / 86400000);
  int64_t in_day = millis - days * 86400000;
  int64_t year = 0;
  int month = 0, day = 0;
  CivilFromDays(days, &year, &month, &day);
  char text[64];
  int hour = static_cast<int>(in_day / 3600000), minute = static_cast<int>(in_day / 60000 % 60);
  int second = static_cast<int>(in_day / 1000 % 60), milli = static_cast<int>(in_day % 1000);
  if (milli != 0) {
    std::snprintf(text, sizeof(text), "%04lld-%02d-%02dT%02d:%02d:%02d.%03dZ",
                  static_cast<long long>(year), month, day, hour, minute, second, milli);
  } else {
    std::snprintf(text, sizeof(text), "%04lld-%02d-%02dT%02d:%02d:%02dZ",
                  static_cast<long long>(year), month, day, hour, minute, second);
  }
  return text;
}

// Bin of `value` for 11 ascending edges: [e0, e1), ..., [e9, e10]; values outside fall in the end
// bins (numpy's convention inside the range).
int HistogramBin(const std::array<double, kHistogramBins + 1>& edges, double value) {
  auto inner_begin = edges.begin() + 1;
  auto inner_end = edges.end() - 1;
  return static_cast<int>(std::upper_bound(inner_begin, inner_end, value) - inner_begin);
}

// Linear interpolation between closest ranks (numpy's default), on sorted values.
double Quantile(const std::vector<double>& sorted, double q) {
  double position = q * static_cast<double>(sorted.size() - 1);
  size_t below = static_cast<size_t>(std::floor(position));
  if (below + 1 >= sorted.size()) return sorted.back();
  double fraction = position - static_cast<double>(below);
  if (fraction == 0) return sorted[below];
  return sorted[below] + (sorted[below + 1] - sorted[below]) * fraction;
}

Json NumberJson(double value, bool integral) {
  if (integral && std::isfinite(value)) return static_cast<int64_t>(value);
  return DoubleToJson(value);
}

void FinishNumeric(const ColumnStats& column, const NumericStats& stats, std::vector<double> sample,
                   size_t sample_size, Json& out) {
  const bool integral = column.type == table::ColumnType::kInt64;
  const int64_t values = stats.finite + stats.positive_infinities + stats.negative_infinities;
  out["nan"] = stats.nan;
  const bool sample_exact = values <= static_cast<int64_t>(sample_size);
  out["sample_exact"] = sample_exact;
  if (values == 0) {
    for (const char* key : {"min", "max", "mean", "std"}) out[key] = nullptr;
    out["quantiles"] = Json::object();
    out["histogram"] = Json{{"edges", Json::array()}, {"counts", Json::array()}};
    out["sample"] = Json::array();
    return;
  }
  double min =
      stats.negative_infinities > 0 ? -std::numeric_limits<double>::infinity() : stats.finite_min;
  double max =
      stats.positive_infinities > 0 ? std::numeric_limits<double>::infinity() : stats.finite_max;
  if (integral) {
    out["min"] = stats.int_min;
    out["max"] = stats.int_max;
  } else {
    out["min"] = DoubleToJson(min);
    out["max"] = DoubleToJson(max);
  }

  const double n = static_cast<double>(stats.finite);
  double mean = std::numeric_limits<double>::quiet_NaN();
  double std_dev = std::numeric_limits<double>::quiet_NaN();
  if (stats.positive_infinities > 0 || stats.negative_infinities > 0) {
    if (stats.negative_infinities == 0) mean = std::numeric_limits<double>::infinity();
    if (stats.positive_infinities == 0) mean = -std::numeric_limits<double>::infinity();
  } else {
    WideInt sum = stats.sums.Sum();
    mean = sum.ToDouble(-1074, n);
    if (stats.finite >= 2) {
      // n * Σx² - (Σx)², exact, in units of 2^-2148.
      WideInt spread = stats.sums.SumOfSquares();
      spread.MultiplySmall(static_cast<uint64_t>(stats.finite));
      if (sum.IsNegative()) sum.Negate();
      spread.Subtract(sum.Square());
      std_dev = std::sqrt(spread.ToDouble(-2148, n * (n - 1)));
    }
  }
  const bool infinite = stats.positive_infinities > 0 || stats.negative_infinities > 0;
  out["mean"] = DoubleToJson(mean);
  // std needs two values; with an infinity among them it is NaN.
  out["std"] = stats.finite >= 2 || infinite ? DoubleToJson(std_dev) : Json(nullptr);

  Json quantiles = Json::object();
  for (size_t i = 0; i < kQuantiles.size(); ++i) {
    double value = kQuantiles[i] == 0   ? min
                   : kQuantiles[i] == 1 ? max
                   : sample.empty()     ? std::numeric_limits<double>::quiet_NaN()
                                        : Quantile(sample, kQuantiles[i]);
    quantiles[kQuantileNames[i]] = DoubleToJson(value);
  }
  out["quantiles"] = std::move(quantiles);

  // Histogram over the finite range; infinities fall in the end bins.
  std::array<double, kHistogramBins + 1> edges{};
  double low = stats.finite > 0 ? stats.finite_min : 0;
  double high = stats.finite > 0 ? stats.finite_max : 0;
  if (low == high) {
    low -= 0.5;
    high += 0.5;
  }
  for (int i = 0; i <= kHistogramBins; ++i) {
    edges[static_cast<size_t>(i)] = low + (high - low) * i / kHistogramBins;
  }
  edges[kHistogramBins] = high;
  std::array<int64_t, kHistogramBins> counts{};
  for (double value : sample) ++counts[static_cast<size_t>(HistogramBin(edges, value))];
  if (!sample_exact && !sample.empty()) {
    // Estimated from the sample, scaled to all values (largest remainders, so the counts add up).
    std::array<double, kHistogramBins> remainders{};
    int64_t assigned = 0;
    for (size_t i = 0; i < counts.size(); ++i) {
      double scaled = static_cast<double>(counts[i]) * static_cast<double>(values) /
                      static_cast<double>(sample.size());
      counts[i] = static_cast<int64_t>(std::floor(scaled));
      remainders[i] = scaled - static_cast<double>(counts[i]);
      assigned += counts[i];
    }
    std::array<size_t, kHistogramBins> order{};
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(),
                     [&](size_t a, size_t b) { return remainders[a] > remainders[b]; });
    for (size_t i = 0; assigned < values; i = (i + 1) % order.size(), ++assigned) {
      ++counts[order[i]];
    }
  }
  Json edges_json = Json::array();
  for (double edge : edges) edges_json.push_back(DoubleToJson(edge));
  out["histogram"] = Json{{"edges", std::move(edges_json)}, {"counts", counts}};

  Json sample_json = Json::array();
  sample_json.get_ref<Json::array_t&>().reserve(sample.size());
  for (double value : sample) sample_json.push_back(NumberJson(value, integral));
  out["sample"] = std::move(sample_json);
}

void FinishCategories(const ColumnStats& column, const CategoryStats& stats, Json& out) {
  out["distinct"] = stats.counts.size();
  out["distinct_exact"] = stats.exact;
  std::vector<std::pair<std::string_view, int64_t>> entries;
  entries.reserve(stats.counts.size());
  for (const auto& [value, entry] : stats.counts) entries.emplace_back(value, entry.count);
  size_t top = std::min(kTopCategories, entries.size());
  std::partial_sort(entries.begin(), entries.begin() + static_cast<std::ptrdiff_t>(top),
                    entries.end(), [](const auto& a, const auto& b) {
                      return a.second != b.second ? a.second > b.second : a.first < b.first;
                    });
  Json top_json = Json::array();
  for (size_t i = 0; i < top; ++i) {
    top_json.push_back(
        Json{{"value", std::string(entries[i].first)}, {"count", entries[i].second}});
  }
  out["top"] = std::move(top_json);
  if (column.type == table::ColumnType::kString) {
    bool any = stats.max_length >= 0;
    out["min_length"] = any ? Json(stats.min_length) : Json(nullptr);
    out["max_length"] = any ? Json(stats.max_length) : Json(nullptr);
  }
}

}  // namespace

struct ProfileBuilder::State {
  table::Schema schema;
  ProfileOptions options;
  uint64_t seed_mix = 0;
  int64_t rows = 0;
  std::vector<ColumnStats> columns;
  std::unique_ptr<RowSample> sample;
  std::vector<double> row_values;             // the current row's numeric values, NaN where none
  std::vector<table::CellValue> cell_values;  // AddChecked: the current row's parsed cells
  // Per column, for AddChecked's loops: the type, and the numeric stats (null if not numeric).
  std::vector<table::ColumnType> types;
  std::vector<NumericStats*> numeric;
  std::vector<table::ShortDecimal> decimals;  // AddChecked: the row's short decimals, in order
  std::vector<size_t> decimal_columns;       // and their columns
  // Deserialize: per sample column, the key limit the state was saved with (values below it
  // are all here); kUnlimited for a builder that was not restored.
  std::vector<uint64_t> restored_limits;
  // Remove: per sample column, the values that are not in the sample (dropped by the saved
  // state's key limit); set up by the first Remove.
  std::vector<int64_t> dropped;
  bool edited = false;  // Remove was called
  // Per column: an edit may have left min and max other than profiling afresh would give (a
  // removed value at a bound, or a zero of the other sign than an equal bound).
  std::vector<uint8_t> stale_bounds;

  bool PrepareEdits();
  // Per sample column, its column's limit in `limits`.
  std::vector<uint64_t> SlotLimits(const KeyLimits& limits) const {
    std::vector<uint64_t> slots;
    for (size_t i = 0; i < columns.size(); ++i) {
      if (columns[i].numeric) slots.push_back(limits[i]);
    }
    return slots;
  }

  // Returns the value (NaN when there is none for the sample).
  double AddNumeric(ColumnStats& column, std::string_view text);
  void AddSampleRow(int64_t line) {
    if (row_values.empty()) return;
    sample->Offer(Mix(static_cast<uint64_t>(line) ^ seed_mix), row_values.data());
  }
};

// Checks that rows can be removed exactly, once: only numeric and timestamp columns (category
// counts keep first-seen order), a sample never compacted (every row with a value below the
// restored key limit is a candidate), and candidates that agree with the counts and the saved
// limits. A builder holding max(sample_size, 512) rows or more is refused, so that adding as
// many rows as were removed never compacts (a compaction prunes by limits a fresh builder of
// the same rows would not have).
bool ProfileBuilder::State::PrepareEdits() {
  if (edited) return true;
  const size_t capacity = sample->capacity();
  if (sample->Compacted() || rows >= static_cast<int64_t>(std::max<size_t>(capacity, 512))) {
    return false;
  }
  dropped.assign(sample->width(), 0);
  for (const ColumnStats& column : columns) {
    if (column.categories) return false;
    if (!column.numeric || capacity == 0) continue;
    const size_t slot = column.numeric->sample_slot;
    const int64_t with_value = column.count - column.numeric->nan;
    const int64_t missing = with_value - sample->CandidatesWithValue(slot);
    const uint64_t restored_limit = restored_limits[slot];
    const bool limited = restored_limit != RowSample::kUnlimited;
    const bool saved_limit = sample->saved_limits()[slot] == restored_limit && limited;
    if (missing < 0 || (missing > 0) != saved_limit ||
        (!saved_limit && sample->saved_limits()[slot] != RowSample::kUnlimited)) {
      return false;
    }
    dropped[slot] = missing;
  }
  stale_bounds.assign(columns.size(), 0);
  edited = true;
  return true;
}

bool SignDiffers(double a, double b) { return std::signbit(a) != std::signbit(b) && a == b; }

// Returns the value for the sample (NaN when there is none).
[[gnu::always_inline]] inline double AddNumber(NumericStats& stats, double value) {
  if (std::isfinite(value)) [[likely]] {
    ++stats.finite;
    stats.finite_min = std::min(stats.finite_min, value);
    stats.finite_max = std::max(stats.finite_max, value);
    stats.sums.Add(value);
  } else if (std::isnan(value)) {
    ++stats.nan;
    return std::numeric_limits<double>::quiet_NaN();
  } else if (value > 0) {
    ++stats.positive_infinities;
  } else {
    ++stats.negative_infinities;
  }
  return value;
}

// A non-null int64 or float64 cell into its column's bounds and sums (not its count); returns
// the value for the sample (NaN when there is none). AddChecked and AddNumericCsv both use it.
[[gnu::always_inline]] inline double AddNumericValue(NumericStats& stats, table::ColumnType type,
                                                     const table::CellValue& value) {
  if (type == table::ColumnType::kInt64) {
    stats.int_min = std::min(stats.int_min, value.integer);
    stats.int_max = std::max(stats.int_max, value.integer);
  }
  return AddNumber(stats, value.number);
}

double ProfileBuilder::State::AddNumeric(ColumnStats& column, std::string_view text) {
  NumericStats& stats = *column.numeric;
  bool widened = false;
  table::CellValue value;
  if (!table::ParseCellValue(column.type, text, &widened, &value)) {
    // Not a number after all (Add assumes CheckCell passed): count it as a null.
    --column.count;
    ++column.nulls;
    return std::numeric_limits<double>::quiet_NaN();
  }
  // A value that widened an int64 column counts as a float (the caller reprofiles with the
  // widened schema anyway).
  if (column.type == table::ColumnType::kInt64 && !widened) {
    stats.int_min = std::min(stats.int_min, value.integer);
    stats.int_max = std::max(stats.int_max, value.integer);
  }
  return AddNumber(stats, value.number);
}

ProfileBuilder::ProfileBuilder(table::Schema schema, ProfileOptions options)
    : state_(std::make_unique<State>()) {
  state_->schema = std::move(schema);
  state_->options = options;
  state_->seed_mix = Mix(options.seed);
  size_t numeric_columns = 0;
  for (const table::Column& column : state_->schema.columns) {
    ColumnStats stats;
    stats.type = column.type;
    switch (column.type) {
      case table::ColumnType::kInt64:
      case table::ColumnType::kFloat64:
        stats.numeric = std::make_unique<NumericStats>();
        stats.numeric->sample_slot = numeric_columns++;
        break;
      case table::ColumnType::kBool:
      case table::ColumnType::kString:
      case table::ColumnType::kCategorical:
        stats.categories = std::make_unique<CategoryStats>();
        break;
      case table::ColumnType::kTimestamp:
        stats.timestamps = std::make_unique<TimestampStats>();
        break;
    }
    state_->columns.push_back(std::move(stats));
  }
  state_->sample = std::make_unique<RowSample>(numeric_columns, options.sample_size);
  state_->restored_limits.assign(numeric_columns, RowSample::kUnlimited);
  state_->row_values.assign(numeric_columns, std::numeric_limits<double>::quiet_NaN());
  state_->cell_values.resize(state_->columns.size());
  for (const ColumnStats& column : state_->columns) {
    state_->types.push_back(column.type);
    state_->numeric.push_back(column.numeric.get());
  }
  state_->decimals.resize(state_->columns.size());
  state_->decimal_columns.resize(state_->columns.size());
}

ProfileBuilder::~ProfileBuilder() = default;
ProfileBuilder::ProfileBuilder(ProfileBuilder&&) noexcept = default;
ProfileBuilder& ProfileBuilder::operator=(ProfileBuilder&&) noexcept = default;

void ProfileBuilder::Add(const table::RowReader& row) {
  State& state = *state_;
  const std::vector<table::Cell>& cells = row.cells();
  ++state.rows;
  for (size_t i = 0; i < state.columns.size(); ++i) {
    ColumnStats& column = state.columns[i];
    if (i >= cells.size() || cells[i].is_null) {
      ++column.nulls;
      if (column.numeric) {
        state.row_values[column.numeric->sample_slot] = std::numeric_limits<double>::quiet_NaN();
      }
      continue;
    }
    ++column.count;
    std::string_view text = cells[i].text;
    switch (column.type) {
      case table::ColumnType::kInt64:
      case table::ColumnType::kFloat64:
        state.row_values[column.numeric->sample_slot] = state.AddNumeric(column, text);
        break;
      case table::ColumnType::kBool: {
        Result<bool> parsed = table::ParseBool(text);
        std::string_view normalized = !parsed.ok() ? text : *parsed ? "true" : "false";
        column.categories->Add(normalized);
        break;
      }
      case table::ColumnType::kString: AddString(*column.categories, text); break;
      case table::ColumnType::kCategorical: column.categories->Add(text); break;
      case table::ColumnType::kTimestamp: {
        Result<int64_t> millis = table::ParseTimestampMillis(text);
        if (!millis.ok()) {
          --column.count;
          ++column.nulls;
          break;
        }
        column.timestamps->min = std::min(column.timestamps->min, *millis);
        column.timestamps->max = std::max(column.timestamps->max, *millis);
        break;
      }
    }
  }
  state.AddSampleRow(row.line());
}

Status ProfileBuilder::AddChecked(const table::RowReader& row, std::string_view file_name,
                                  bool* widen) {
  State& state = *state_;
  const std::vector<table::Cell>& cells = row.cells();
  const size_t columns = state.columns.size();
  const size_t width = std::min(cells.size(), columns);
  const table::ColumnType* types = state.types.data();
  table::CellValue* values = state.cell_values.data();
  // Check and parse every cell first: nothing of a bad row is added. Short decimals are split
  // into digits first and divided after, in a loop of independent divisions.
  bool widened = false;
  table::ShortDecimal* decimals = state.decimals.data();
  size_t* decimal_columns = state.decimal_columns.data();
  size_t pending = 0;
  for (size_t i = 0; i < width; ++i) {
    const table::Cell& cell = cells[i];
    if (cell.is_null) continue;
    if (types[i] == table::ColumnType::kFloat64 &&
        table::ParseShortDecimalParts(cell.text, &decimals[pending])) [[likely]] {
      decimal_columns[pending++] = i;
      continue;
    }
    if (!table::ParseNumericCell(types[i], cell.text, &widened, &values[i])) [[unlikely]] {
      return table::CellMismatch(state.schema.columns[i], cell.text, file_name, row.line(),
                                 static_cast<int>(i) + 1);
    }
  }
  for (size_t k = 0; k < pending; ++k) {
    values[decimal_columns[k]].number = table::ShortDecimalValue(decimals[k]);
  }
  if (widened) [[unlikely]] {
    if (widen != nullptr) *widen = true;
    return Status::Ok();
  }
  ++state.rows;
  double* row_values = state.row_values.data();
  NumericStats* const* numeric = state.numeric.data();
  for (size_t i = 0; i < columns; ++i) {
    ColumnStats& column = state.columns[i];
    NumericStats* stats = numeric[i];
    if (i >= width || cells[i].is_null) [[unlikely]] {
      ++column.nulls;
      if (stats != nullptr) row_values[stats->sample_slot] = std::numeric_limits<double>::quiet_NaN();
      continue;
    }
    ++column.count;
    const table::CellValue& value = values[i];
    switch (types[i]) {
      case table::ColumnType::kInt64: {
        row_values[stats->sample_slot] = AddNumericValue(*stats, types[i], value);
        break;
      }
      case table::ColumnType::kFloat64: {
        if (state.edited && value.number == 0 &&
            (SignDiffers(value.number, stats->finite_min) ||
             SignDiffers(value.number, stats->finite_max))) [[unlikely]] {
          // min/max keep the first zero met; a fresh profile might meet this one first.
          state.stale_bounds[i] = 1;
        }
        row_values[stats->sample_slot] = AddNumericValue(*stats, types[i], value);
        break;
      }
      case table::ColumnType::kBool:
        column.categories->Add(value.boolean ? "true" : "false");
        break;
      case table::ColumnType::kString: AddString(*column.categories, cells[i].text); break;
      case table::ColumnType::kCategorical: column.categories->Add(cells[i].text); break;
      case table::ColumnType::kTimestamp:
        column.timestamps->min = std::min(column.timestamps->min, value.integer);
        column.timestamps->max = std::max(column.timestamps->max, value.integer);
        break;
    }
  }
  state.AddSampleRow(row.line());
  return Status::Ok();
}

namespace {

constexpr uint64_t kEveryByte = 0x0101010101010101ULL;
// Longer fields are left to the reader (which refuses fields over ReadOptions::max_field_bytes).
constexpr size_t kMaxNumberBytes = 4096;

// Bit 7 of every byte of `word` that is zero; exact for the lowest one (a borrow only flags bytes
// above a zero byte), which is all FieldEnd needs.
inline uint64_t ZeroBytes(uint64_t word) {
  return (word - kEveryByte) & ~word & (kEveryByte * 0x80);
}

// The first `delimiter` or '\n' in [p, end), or end.
inline const char* FieldEnd(const char* p, const char* end, uint64_t delimiters) {
  constexpr uint64_t kNewlines = kEveryByte * '\n';
  while (end - p >= 8) {
    uint64_t word;
    std::memcpy(&word, p, 8);
    const uint64_t flags = ZeroBytes(word ^ delimiters) | ZeroBytes(word ^ kNewlines);
    if (flags != 0) return p + std::countr_zero(flags) / 8;
    p += 8;
  }
  const char delimiter = static_cast<char>(delimiters & 0xFF);
  while (p != end && *p != delimiter && *p != '\n') ++p;
  return p;
}

}  // namespace

// Flattened: the word parses and the stats update inline into the row loop.
[[gnu::flatten]] bool ProfileBuilder::AddNumericCsv(std::string_view bytes, char delimiter,
                                                    int64_t first_line, bool skip_first_line,
                                                    uint64_t* rows) {
  if constexpr (std::endian::native != std::endian::little) return false;
  State& state = *state_;
  const size_t columns = state.columns.size();
  if (columns == 0 || (delimiter != ',' && delimiter != '\t')) return false;
  const table::ColumnType* types = state.types.data();
  for (size_t i = 0; i < columns; ++i) {
    if (types[i] != table::ColumnType::kInt64 && types[i] != table::ColumnType::kFloat64) {
      return false;
    }
  }
  if (state.edited) return false;  // only a fresh builder: AddChecked tracks edited bounds
  const char* p = bytes.data();
  const char* const end = p + bytes.size();
  int64_t line = first_line;
  if (skip_first_line) {
    // The header: the reader skips a BOM before it and takes its names; take only the schema's.
    constexpr std::string_view kBom = "\xEF\xBB\xBF";
    if (bytes.substr(0, kBom.size()) == kBom) p += kBom.size();
    if (p == end) return false;  // the reader's "empty file"
    const char* newline = static_cast<const char*>(std::memchr(p, '\n', end - p));
    std::string_view header(p, (newline != nullptr ? newline : end) - p);
    if (header.find_first_of("\"\r") != std::string_view::npos) return false;
    for (size_t i = 0; i < columns; ++i) {
      const size_t field_end = i + 1 < columns ? header.find(delimiter) : header.size();
      if (field_end == std::string_view::npos ||
          header.substr(0, field_end) != state.schema.columns[i].name) {
        return false;
      }
      header.remove_prefix(std::min(field_end + 1, header.size()));
    }
    if (!header.empty()) return false;
    p = newline != nullptr ? newline + 1 : end;
    ++line;
  }
  const uint64_t delimiters = kEveryByte * static_cast<unsigned char>(delimiter);
  double* row = state.row_values.data();
  NumericStats* const* numeric = state.numeric.data();
  ColumnStats* column_stats = state.columns.data();
  uint64_t added = 0;
  while (p != end) {
    if (*p == '\n') return false;  // a blank line (a null row in a one-column table)
    for (size_t i = 0; i < columns; ++i) {
      const char* field_end = FieldEnd(p, end, delimiters);
      const bool last = i + 1 == columns;
      // The last field must end the line, every other one at a delimiter.
      if (last ? field_end != end && *field_end != '\n'
               : field_end == end || *field_end != delimiter) {
        return false;
      }
      const size_t size = static_cast<size_t>(field_end - p);
      ColumnStats& column = column_stats[i];
      NumericStats& stats = *numeric[i];
      if (size == 0) {
        ++column.nulls;
        row[stats.sample_slot] = std::numeric_limits<double>::quiet_NaN();
      } else {
        if (size > kMaxNumberBytes) return false;
        // The number parses take only whole number text: never a quote or a '\r'.
        bool widened = false;
        table::CellValue cell;
        if (!table::ParseNumericCell(types[i], std::string_view(p, size), &widened, &cell) ||
            widened) {
          return false;
        }
        ++column.count;
        row[stats.sample_slot] = AddNumericValue(stats, types[i], cell);
      }
      p = field_end == end ? end : field_end + 1;
    }
    ++state.rows;
    state.AddSampleRow(line);
    ++line;
    ++added;
  }
  *rows = added;
  return true;
}

bool ProfileBuilder::Remove(const table::RowReader& row) {
  State& state = *state_;
  if (!state.PrepareEdits()) return false;
  const std::vector<table::Cell>& cells = row.cells();
  const size_t width = std::min(cells.size(), state.columns.size());
  table::CellValue* values = state.cell_values.data();
  double* row_values = state.row_values.data();
  std::fill(state.row_values.begin(), state.row_values.end(),
            std::numeric_limits<double>::quiet_NaN());
  // Parse and check everything first: nothing changes unless the whole row can go.
  std::vector<uint8_t> at_bound(state.columns.size(), 0);
  for (size_t i = 0; i < width; ++i) {
    if (cells[i].is_null) continue;
    ColumnStats& column = state.columns[i];
    bool widened = false;
    if (!table::ParseCellValue(column.type, cells[i].text, &widened, &values[i]) || widened) {
      return false;
    }
    const table::CellValue& value = values[i];
    if (column.numeric) {
      const NumericStats& stats = *column.numeric;
      const double number = value.number;
      // A bound may have been only this value: it is recomputed from the other rows.
      if (std::isfinite(number) && !(number > stats.finite_min && number < stats.finite_max)) {
        at_bound[i] = 1;
      }
      if (column.type == table::ColumnType::kInt64 &&
          !(value.integer > stats.int_min && value.integer < stats.int_max)) {
        at_bound[i] = 1;
      }
      row_values[stats.sample_slot] = number;  // NaN: no value for the sample
    } else if (column.timestamps) {
      if (!(value.integer > column.timestamps->min && value.integer < column.timestamps->max)) {
        at_bound[i] = 1;
      }
    }
  }
  // The row is a candidate if one of its values was kept (below its column's restored limit);
  // the others were dropped.
  RowSample& sample = *state.sample;
  const uint64_t key = Mix(static_cast<uint64_t>(row.line()) ^ state.seed_mix);
  const std::vector<uint64_t>& limits = state.restored_limits;
  bool candidate = false;
  for (size_t c = 0; c < sample.width() && sample.capacity() > 0; ++c) {
    if (std::isnan(row_values[c])) continue;
    if (RowSample::Below(key, limits[c])) {
      candidate = true;
    } else if (state.dropped[c] == 0) {
      return false;  // not this row's
    }
  }
  if (candidate && !sample.RemoveKey(key)) return false;  // not a row this builder holds

  --state.rows;
  for (size_t i = 0; i < state.columns.size(); ++i) {
    ColumnStats& column = state.columns[i];
    if (i >= width || cells[i].is_null) {
      --column.nulls;
      continue;
    }
    if (at_bound[i]) state.stale_bounds[i] = 1;
    --column.count;
    if (column.numeric) {
      NumericStats& stats = *column.numeric;
      const double number = values[i].number;
      if (std::isfinite(number)) {
        --stats.finite;
        stats.sums.Remove(number);
      } else if (std::isnan(number)) {
        --stats.nan;
      } else if (number > 0) {
        --stats.positive_infinities;
      } else {
        --stats.negative_infinities;
      }
    }
  }
  for (size_t c = 0; c < sample.width() && sample.capacity() > 0; ++c) {
    if (std::isnan(row_values[c]) || RowSample::Below(key, limits[c])) continue;
    if (--state.dropped[c] == 0) sample.SetSavedLimit(c, RowSample::kUnlimited);
  }
  return true;
}

std::vector<size_t> ProfileBuilder::StaleBounds() const {
  std::vector<size_t> stale;
  for (size_t i = 0; i < state_->stale_bounds.size(); ++i) {
    if (state_->stale_bounds[i]) stale.push_back(i);
  }
  return stale;
}

bool ProfileBuilder::RecomputeBounds(size_t index, const std::vector<table::Cell>& cells) {
  State& state = *state_;
  ColumnStats& column = state.columns[index];
  // The folds AddChecked does, in the same (line) order: the same bound among equal zeros.
  double finite_min = std::numeric_limits<double>::infinity();
  double finite_max = -std::numeric_limits<double>::infinity();
  int64_t int_min = std::numeric_limits<int64_t>::max();
  int64_t int_max = std::numeric_limits<int64_t>::min();
  int64_t values = 0;
  for (const table::Cell& cell : cells) {
    if (cell.is_null) continue;
    bool widened = false;
    table::CellValue value;
    if (!table::ParseCellValue(column.type, cell.text, &widened, &value) || widened) return false;
    ++values;
    if (column.timestamps || column.type == table::ColumnType::kInt64) {
      int_min = std::min(int_min, value.integer);
      int_max = std::max(int_max, value.integer);
    }
    if (column.numeric && std::isfinite(value.number)) {
      finite_min = std::min(finite_min, value.number);
      finite_max = std::max(finite_max, value.number);
    }
  }
  if (values != column.count) return false;  // not this builder's rows
  if (column.numeric) {
    NumericStats& stats = *column.numeric;
    stats.finite_min = finite_min;
    stats.finite_max = finite_max;
    if (column.type == table::ColumnType::kInt64) {
      stats.int_min = int_min;
      stats.int_max = int_max;
    }
  } else if (column.timestamps) {
    column.timestamps->min = int_min;
    column.timestamps->max = int_max;
  }
  if (index < state.stale_bounds.size()) state.stale_bounds[index] = 0;
  return true;
}

bool ProfileBuilder::EditsExact() const {
  for (uint8_t stale : state_->stale_bounds) {
    if (stale) return false;
  }
  return !state_->sample->Compacted();
}

KeyLimits ProfileBuilder::RestoredKeyLimits() const {
  const State& state = *state_;
  std::vector<uint64_t> columns(state.columns.size(), KeyLimits::kNone);
  for (size_t i = 0; i < state.columns.size(); ++i) {
    if (state.columns[i].numeric) {
      columns[i] = state.restored_limits[state.columns[i].numeric->sample_slot];
    }
  }
  return KeyLimits(std::move(columns));
}

void ProfileBuilder::Merge(ProfileBuilder&& other) {
  State& state = *state_;
  State& from = *other.state_;
  assert(state.columns.size() == from.columns.size());
  state.rows += from.rows;
  state.sample->Merge(std::move(*from.sample));
  for (size_t i = 0; i < state.columns.size(); ++i) {
    ColumnStats& into = state.columns[i];
    ColumnStats& source = from.columns[i];
    into.count += source.count;
    into.nulls += source.nulls;
    if (into.numeric) {
      NumericStats& a = *into.numeric;
      NumericStats& b = *source.numeric;
      a.nan += b.nan;
      a.positive_infinities += b.positive_infinities;
      a.negative_infinities += b.negative_infinities;
      a.finite += b.finite;
      a.finite_min = std::min(a.finite_min, b.finite_min);
      a.finite_max = std::max(a.finite_max, b.finite_max);
      a.int_min = std::min(a.int_min, b.int_min);
      a.int_max = std::max(a.int_max, b.int_max);
      a.sums.Merge(std::move(b.sums));
    }
    if (into.categories) {
      CategoryStats& a = *into.categories;
      CategoryStats& b = *source.categories;
      std::vector<std::pair<uint64_t, decltype(b.counts)::iterator>> order;
      order.reserve(b.counts.size());
      for (auto it = b.counts.begin(); it != b.counts.end(); ++it) {
        order.emplace_back(it->second.order, it);
      }
      std::sort(order.begin(), order.end(),
                [](const auto& x, const auto& y) { return x.first < y.first; });
      for (const auto& [unused, it] : order) a.Add(it->first, it->second.count);
      a.exact = a.exact && b.exact;
      a.min_length = std::min(a.min_length, b.min_length);
      a.max_length = std::max(a.max_length, b.max_length);
    }
    if (into.timestamps) {
      into.timestamps->min = std::min(into.timestamps->min, source.timestamps->min);
      into.timestamps->max = std::max(into.timestamps->max, source.timestamps->max);
    }
  }
}

Json ProfileBuilder::FinishColumn(size_t i, std::optional<uint64_t> full_limit) const {
  const State& state = *state_;
  const ColumnStats& column = state.columns[i];
  Json out = Json::object();
  out["name"] = state.schema.columns[i].name;
  out["type"] = std::string(table::ColumnTypeName(column.type));
  out["count"] = column.count;
  out["nulls"] = column.nulls;
  if (column.numeric) {
    FinishNumeric(column, *column.numeric,
                  state.sample->SortedSample(column.numeric->sample_slot, full_limit),
                  state.options.sample_size, out);
  }
  if (column.categories) FinishCategories(column, *column.categories, out);
  if (column.timestamps) {
    bool any = column.timestamps->min <= column.timestamps->max;
    out["min"] = any ? Json(FormatTimestamp(column.timestamps->min)) : Json(nullptr);
    out["max"] = any ? Json(FormatTimestamp(column.timestamps->max)) : Json(nullptr);
  }
  return out;
}

Json ProfileBuilder::Finish() const {
  const State& state = *state_;
  const std::optional<uint64_t> full_limit = state.sample->FullLimit();
  Json columns = Json::array();
  for (size_t i = 0; i < state.columns.size(); ++i) columns.push_back(FinishColumn(i, full_limit));
  return Json{{"rows", state.rows}, {"columns", std::move(columns)}};
}

std::string ProfileBuilder::FinishText(ThreadPool* pool) const {
  const State& state = *state_;
  const std::optional<uint64_t> full_limit = state.sample->FullLimit();
  const size_t count = state.columns.size();
  std::vector<std::string> texts(count);
  // Columns are claimed one at a time by this thread and by up to pool->size() pool tasks. The
  // tasks use this frame's locals, so this thread waits for every one it submitted, started or
  // not; one that starts after the columns are all claimed returns at once. A pool busy with
  // other work (a checkout's chunk reads) delays the return by those tasks; calling this from a
  // task of the same pool could leave no worker to run them.
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t i = next.fetch_add(1); i < count; i = next.fetch_add(1)) {
      texts[i] = FinishColumn(i, full_limit).dump();
    }
  };
  std::mutex mutex;
  std::condition_variable done;
  size_t running = 0;  // guarded by mutex: tasks submitted and not yet finished
  const size_t helpers = pool == nullptr ? 0 : std::min<size_t>(pool->size(), count / 2);
  for (size_t k = 0; k < helpers; ++k) {
    {
      std::lock_guard<std::mutex> lock(mutex);
      ++running;
    }
    pool->Submit([&] {
      work();
      std::lock_guard<std::mutex> lock(mutex);
      if (--running == 0) done.notify_all();
    });
  }
  work();
  {
    std::unique_lock<std::mutex> lock(mutex);
    done.wait(lock, [&] { return running == 0; });
  }
  // Finish().dump(): an object's keys in sorted order, no spaces.
  size_t size = 64;
  for (const std::string& text : texts) size += text.size() + 1;
  std::string out;
  out.reserve(size);
  out += "{\"columns\":[";
  for (size_t i = 0; i < count; ++i) {
    if (i > 0) out += ',';
    out += texts[i];
  }
  out += "],\"rows\":";
  out += std::to_string(state.rows);
  out += '}';
  return out;
}


// ---------------------------------------------------------------------------------------------
// Saved state (Serialize, Deserialize)
//
// Grammar (fixed-size integers little-endian; varint: LEB128 of a uint64, at most 10 bytes;
// zigzag: the varint of (n << 1) ^ (n >> 63)):
//   state       = "KPS2" body checksum:u64             checksum: XXH3-64 of "KPS2" and body
//   body        = sample_size:varint seed:u64
//                 column_count:varint column_count*(type:u8 name:string)
//                 rows:varint column_count*stats sample
//   string      = length:varint length*u8
//   stats       = count:varint nulls:varint (numeric | categories | timestamps), by the type
//   numeric     = nan:varint positive_infinities:varint negative_infinities:varint finite:varint
//                 finite_min:f64 finite_max:f64 int_min:zigzag int_max:zigzag sum:wide squares:wide
//   wide        = low:varint count:varint count*limb:u64
//                 limbs low..low+count-1 of WideInt's two's complement; the limbs below are 0,
//                 those above the sign extension of the last one (sum in units of 2^-1074,
//                 squares in units of 2^-2148)
//   categories  = exact:u8 min_length:zigzag max_length:zigzag distinct:varint
//                 distinct*(value:string count:varint)  in first-seen order
//   timestamps  = min:zigzag max:zigzag
//   sample      = numeric_columns*(key_limit:u64 saved_limit:u64) candidates:varint
//                 candidates*(line_delta:varint numeric_columns*number)
//                 by ascending line (the first delta is from 0, later ones at least 1); a
//                 candidate's key is Mix(line ^ Mix(seed)); it has a value in some column, and
//                 each of its values has a key below its column's key_limit
//   number      = h:varint   h % 10 = d < 8: the value is zigzag-decoded (h / 10) divided by 10^d
//                 (in doubles: exact for the short decimals tables hold); 8: none (NaN);
//                 9: the double's bits follow as a u64
// Deserialize also reads the previous version, "KPS1": one key_limit:u64 for every column after
// the seed, and only the saved limits before the candidates.
namespace {

constexpr std::string_view kStateMagic = "KPS2";
constexpr std::string_view kStateMagicOneLimit = "KPS1";
constexpr int64_t kMaxRows = int64_t{1} << 62;
constexpr int64_t kMaxTimestampMillis = 1'000'000'000'000'000;  // year ~33,000: ISO text stops at 9999
constexpr std::array<double, 8> kNumberScales = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7};

// Stable codes of the column types in saved state.
uint8_t TypeCode(table::ColumnType type) {
  switch (type) {
    case table::ColumnType::kInt64: return 1;
    case table::ColumnType::kFloat64: return 2;
    case table::ColumnType::kBool: return 3;
    case table::ColumnType::kString: return 4;
    case table::ColumnType::kCategorical: return 5;
    case table::ColumnType::kTimestamp: return 6;
  }
  return 0;
}

uint64_t ZigzagOf(int64_t value) {
  return (static_cast<uint64_t>(value) << 1) ^ static_cast<uint64_t>(value >> 63);
}
int64_t FromZigzag(uint64_t value) {
  return static_cast<int64_t>(value >> 1) ^ -static_cast<int64_t>(value & 1);
}

class StateWriter {
 public:
  void U8(uint8_t value) { out_.push_back(static_cast<char>(value)); }
  void U64(uint64_t value) {
    for (int i = 0; i < 8; ++i) out_.push_back(static_cast<char>(value >> (8 * i)));
  }
  void Varint(uint64_t value) {
    while (value >= 0x80) {
      out_.push_back(static_cast<char>(value | 0x80));
      value >>= 7;
    }
    out_.push_back(static_cast<char>(value));
  }
  void Zigzag(int64_t value) { Varint(ZigzagOf(value)); }
  void Double(double value) { U64(std::bit_cast<uint64_t>(value)); }
  void String(std::string_view text) {
    Varint(text.size());
    out_.append(text);
  }
  void Raw(std::string_view bytes) { out_.append(bytes); }
  void Wide(const WideInt& value) {
    const uint64_t extension = value.IsNegative() ? ~uint64_t{0} : 0;
    size_t low = 0;
    while (low < WideInt::kLimbs && value.limb(low) == 0) ++low;
    if (low == WideInt::kLimbs) {  // zero
      Varint(0);
      Varint(0);
      return;
    }
    size_t high = WideInt::kLimbs - 1;  // the last limb that is not sign extension
    while (high > low && value.limb(high) == extension) --high;
    if ((value.limb(high) >> 63) != (extension & 1)) ++high;  // keep the sign: one more limb
    Varint(low);
    Varint(high - low + 1);
    for (size_t i = low; i <= high; ++i) U64(value.limb(i));
  }
  void Number(double value) {
    if (std::isnan(value)) {
      Varint(8);
      return;
    }
    for (size_t digits = 0; digits < kNumberScales.size(); ++digits) {
      const double scaled = value * kNumberScales[digits];
      if (!(std::fabs(scaled) <= 9007199254740992.0)) break;  // 2^53
      const int64_t mantissa = static_cast<int64_t>(std::nearbyint(scaled));
      const double decoded = static_cast<double>(mantissa) / kNumberScales[digits];
      if (std::bit_cast<uint64_t>(decoded) == std::bit_cast<uint64_t>(value)) {
        Varint(ZigzagOf(mantissa) * 10 + digits);
        return;
      }
    }
    Varint(9);
    Double(value);
  }

  std::string& bytes() { return out_; }

 private:
  std::string out_;
};

// Reads the grammar above; every method returns false on a truncated or impossible value.
class StateReader {
 public:
  explicit StateReader(std::string_view in) : in_(in) {}

  size_t remaining() const { return in_.size() - position_; }
  size_t position() const { return position_; }

  bool U8(uint8_t* value) {
    if (remaining() < 1) return false;
    *value = static_cast<uint8_t>(in_[position_++]);
    return true;
  }
  bool U64(uint64_t* value) {
    if (remaining() < 8) return false;
    uint64_t result = 0;
    for (int i = 0; i < 8; ++i) {
      result |= static_cast<uint64_t>(static_cast<uint8_t>(in_[position_ + i])) << (8 * i);
    }
    position_ += 8;
    *value = result;
    return true;
  }
  bool Varint(uint64_t* value) {
    uint64_t result = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      uint8_t byte;
      if (!U8(&byte)) return false;
      if (shift == 63 && byte > 1) return false;  // more than 64 bits
      result |= static_cast<uint64_t>(byte & 0x7f) << shift;
      if ((byte & 0x80) == 0) {
        *value = result;
        return true;
      }
    }
    return false;
  }
  // A count of things that each take at least one byte: at most the bytes left.
  bool Count(uint64_t* value, uint64_t limit) {
    return Varint(value) && *value <= limit && *value <= remaining();
  }
  bool NonNegative(int64_t* value, int64_t limit) {
    uint64_t raw;
    if (!Varint(&raw) || raw > static_cast<uint64_t>(limit)) return false;
    *value = static_cast<int64_t>(raw);
    return true;
  }
  bool Zigzag(int64_t* value) {
    uint64_t raw;
    if (!Varint(&raw)) return false;
    *value = FromZigzag(raw);
    return true;
  }
  bool Double(double* value) {
    uint64_t bits;
    if (!U64(&bits)) return false;
    *value = std::bit_cast<double>(bits);
    return true;
  }
  bool String(std::string_view* text) {
    uint64_t length;
    if (!Count(&length, remaining())) return false;
    *text = in_.substr(position_, length);
    position_ += length;
    return true;
  }
  bool Wide(WideInt* value) {
    uint64_t low, count;
    if (!Varint(&low) || !Varint(&count) || low > WideInt::kLimbs ||
        count > WideInt::kLimbs - low || count * 8 > remaining()) {
      return false;
    }
    *value = WideInt();
    uint64_t limb = 0;
    for (size_t i = low; i < low + count; ++i) {
      if (!U64(&limb)) return false;
      value->set_limb(i, limb);
    }
    if (count > 0 && (limb >> 63) != 0) {
      for (size_t i = low + count; i < WideInt::kLimbs; ++i) value->set_limb(i, ~uint64_t{0});
    }
    return true;
  }
  bool Number(double* value) {
    uint64_t code;
    if (!Varint(&code)) return false;
    const uint64_t digits = code % 10;
    if (digits < kNumberScales.size()) {
      *value = static_cast<double>(FromZigzag(code / 10)) / kNumberScales[digits];
      return true;
    }
    if (digits == 8) {
      *value = std::numeric_limits<double>::quiet_NaN();
      return true;
    }
    return Double(value);
  }

 private:
  std::string_view in_;
  size_t position_ = 0;
};

void WriteColumn(const ColumnStats& column, StateWriter& out) {
  out.Varint(static_cast<uint64_t>(column.count));
  out.Varint(static_cast<uint64_t>(column.nulls));
  if (column.numeric) {
    const NumericStats& stats = *column.numeric;
    out.Varint(static_cast<uint64_t>(stats.nan));
    out.Varint(static_cast<uint64_t>(stats.positive_infinities));
    out.Varint(static_cast<uint64_t>(stats.negative_infinities));
    out.Varint(static_cast<uint64_t>(stats.finite));
    out.Double(stats.finite_min);
    out.Double(stats.finite_max);
    out.Zigzag(stats.int_min);
    out.Zigzag(stats.int_max);
    out.Wide(stats.sums.Sum());
    out.Wide(stats.sums.SumOfSquares());
  }
  if (column.categories) {
    const CategoryStats& stats = *column.categories;
    out.U8(stats.exact ? 1 : 0);
    out.Zigzag(stats.min_length);
    out.Zigzag(stats.max_length);
    std::vector<const std::pair<const std::string, CategoryStats::Entry>*> entries;
    entries.reserve(stats.counts.size());
    for (const auto& entry : stats.counts) entries.push_back(&entry);
    std::sort(entries.begin(), entries.end(),
              [](const auto* a, const auto* b) { return a->second.order < b->second.order; });
    out.Varint(entries.size());
    for (const auto* entry : entries) {
      out.String(entry->first);
      out.Varint(static_cast<uint64_t>(entry->second.count));
    }
  }
  if (column.timestamps) {
    out.Zigzag(column.timestamps->min);
    out.Zigzag(column.timestamps->max);
  }
}

// Reads one column's stats into a fresh ColumnStats of its type; false if malformed or
// inconsistent (counts that do not add up, duplicate categories, timestamps out of range).
bool ReadColumn(StateReader& in, int64_t rows, ColumnStats& column) {
  if (!in.NonNegative(&column.count, rows) || !in.NonNegative(&column.nulls, rows) ||
      column.count + column.nulls != rows) {
    return false;
  }
  if (column.numeric) {
    NumericStats& stats = *column.numeric;
    WideInt sum, squares;
    int64_t total = 0;
    for (int64_t* counter : {&stats.nan, &stats.positive_infinities, &stats.negative_infinities,
                             &stats.finite}) {
      if (!in.NonNegative(counter, column.count)) return false;
      total += *counter;
      if (total > column.count) return false;
    }
    if (total != column.count || !in.Double(&stats.finite_min) || !in.Double(&stats.finite_max) ||
        !in.Zigzag(&stats.int_min) || !in.Zigzag(&stats.int_max) || !in.Wide(&sum) ||
        !in.Wide(&squares)) {
      return false;
    }
    stats.sums = ExactSums::FromTotals(sum, squares);
  }
  if (column.categories) {
    CategoryStats& stats = *column.categories;
    uint8_t exact;
    uint64_t distinct;
    if (!in.U8(&exact) || exact > 1 || !in.Zigzag(&stats.min_length) ||
        !in.Zigzag(&stats.max_length) || !in.Count(&distinct, kMaxDistinct)) {
      return false;
    }
    stats.exact = exact == 1;
    stats.counts.reserve(distinct);
    int64_t total = 0;
    for (uint64_t i = 0; i < distinct; ++i) {
      std::string_view value;
      int64_t count;
      if (!in.String(&value) || !in.NonNegative(&count, column.count) || count == 0) return false;
      if (!table::IsValidUtf8(value)) return false;  // no reader takes such a cell
      total += count;
      if (total > column.count) return false;
      if (!stats.counts.emplace(std::string(value), CategoryStats::Entry{count, i}).second) {
        return false;  // a value twice
      }
    }
    stats.next_order = distinct;
  }
  if (column.timestamps) {
    TimestampStats& stats = *column.timestamps;
    if (!in.Zigzag(&stats.min) || !in.Zigzag(&stats.max)) return false;
    const bool empty = stats.min == std::numeric_limits<int64_t>::max() &&
                       stats.max == std::numeric_limits<int64_t>::min();
    const bool in_range = stats.min <= stats.max && stats.min >= -kMaxTimestampMillis &&
                          stats.max <= kMaxTimestampMillis;
    if (!empty && !in_range) return false;
  }
  return true;
}

}  // namespace

std::string ProfileBuilder::Serialize(const KeyLimits& limits) const {
  const State& state = *state_;
  StateWriter out;
  out.Raw(kStateMagic);
  out.Varint(state.options.sample_size);
  out.U64(state.options.seed);
  out.Varint(state.schema.columns.size());
  for (const table::Column& column : state.schema.columns) {
    out.U8(TypeCode(column.type));
    out.String(column.name);
  }
  out.Varint(static_cast<uint64_t>(state.rows));
  for (const ColumnStats& column : state.columns) WriteColumn(column, out);

  const RowSample& sample = *state.sample;
  const std::vector<uint64_t> key_limits = state.SlotLimits(limits);
  std::vector<uint64_t> saved_limits;
  std::vector<size_t> kept = sample.KeptRows(key_limits, &saved_limits);
  for (size_t c = 0; c < sample.width(); ++c) {
    out.U64(key_limits[c]);
    out.U64(saved_limits[c]);
  }
  std::vector<std::pair<uint64_t, size_t>> by_line;  // (line, candidate row)
  by_line.reserve(kept.size());
  for (size_t row : kept) by_line.emplace_back(Unmix(sample.key(row)) ^ state.seed_mix, row);
  std::sort(by_line.begin(), by_line.end());
  out.Varint(by_line.size());
  uint64_t previous_line = 0;
  for (const auto& [line, row] : by_line) {
    out.Varint(line - previous_line);
    previous_line = line;
    const double* values = sample.values(row);
    for (size_t c = 0; c < sample.width(); ++c) {
      out.Number(sample.Keeps(row, c, key_limits) ? values[c]
                                                  : std::numeric_limits<double>::quiet_NaN());
    }
  }
  out.U64(Xxh3(out.bytes()));
  return std::move(out.bytes());
}

Result<ProfileBuilder> ProfileBuilder::Deserialize(const table::Schema& schema,
                                                   ProfileOptions options,
                                                   std::string_view bytes) {
  constexpr size_t kChecksumSize = 8;
  if (bytes.size() < kStateMagic.size() + kChecksumSize ||
      (bytes.substr(0, kStateMagic.size()) != kStateMagic &&
       bytes.substr(0, kStateMagic.size()) != kStateMagicOneLimit)) {
    return InvalidArgument("saved profile state: not a saved profile state");
  }
  const bool one_limit = bytes.substr(0, kStateMagic.size()) == kStateMagicOneLimit;
  const std::string_view covered = bytes.substr(0, bytes.size() - kChecksumSize);
  StateReader checksum_reader(bytes.substr(covered.size()));
  uint64_t checksum = 0;
  if (!checksum_reader.U64(&checksum) || checksum != Xxh3(covered)) {
    return InvalidArgument("saved profile state: checksum mismatch (truncated or corrupt)");
  }
  StateReader in(covered.substr(kStateMagic.size()));
  auto malformed = [&in] {
    return InvalidArgument("saved profile state: malformed at byte " +
                           std::to_string(kStateMagic.size() + in.position()));
  };

  uint64_t sample_size, seed, key_limit = RowSample::kUnlimited, column_count;
  if (!in.Varint(&sample_size) || !in.U64(&seed) || (one_limit && !in.U64(&key_limit)) ||
      !in.Varint(&column_count)) {
    return malformed();
  }
  if (sample_size != options.sample_size || seed != options.seed) {
    return InvalidArgument("saved profile state: saved with other profile options (sample size " +
                           std::to_string(sample_size) + ", seed " + std::to_string(seed) + ")");
  }
  bool same_schema = column_count == schema.columns.size();
  for (size_t i = 0; same_schema && i < schema.columns.size(); ++i) {
    uint8_t type;
    std::string_view name;
    if (!in.U8(&type) || !in.String(&name)) return malformed();
    same_schema = type == TypeCode(schema.columns[i].type) && name == schema.columns[i].name;
  }
  if (!same_schema) return InvalidArgument("saved profile state: saved for another schema");

  ProfileBuilder builder(schema, options);
  State& state = *builder.state_;
  if (!in.NonNegative(&state.rows, kMaxRows)) return malformed();
  for (ColumnStats& column : state.columns) {
    if (!ReadColumn(in, state.rows, column)) return malformed();
  }

  const size_t width = state.sample->width();
  std::vector<uint64_t> key_limits(width, key_limit);
  std::vector<uint64_t> saved_limits(width);
  for (size_t c = 0; c < width; ++c) {
    if ((!one_limit && !in.U64(&key_limits[c])) || !in.U64(&saved_limits[c])) return malformed();
  }
  uint64_t candidates;
  // Each candidate takes at least 1 + width bytes.
  if (!in.Count(&candidates, in.remaining() / (1 + width))) return malformed();
  if (candidates > 0 && state.sample->capacity() == 0) return malformed();
  std::vector<uint64_t> keys;
  std::vector<double> values;
  keys.reserve(candidates);
  values.reserve(candidates * width);
  uint64_t line = 0;
  for (uint64_t i = 0; i < candidates; ++i) {
    uint64_t delta;
    if (!in.Varint(&delta) || (i > 0 && delta == 0) || line + delta < line) return malformed();
    line += delta;
    const uint64_t key = Mix(line ^ state.seed_mix);
    keys.push_back(key);
    bool has_value = false;
    for (size_t c = 0; c < width; ++c) {
      double value;
      if (!in.Number(&value)) return malformed();
      if (!std::isnan(value)) {
        if (!RowSample::Below(key, key_limits[c])) return malformed();
        has_value = true;
      }
      values.push_back(value);
    }
    if (!has_value) return malformed();
  }
  if (in.remaining() != 0) return malformed();
  state.sample->Restore(std::move(keys), std::move(values), std::move(saved_limits));
  state.restored_limits = std::move(key_limits);
  return builder;
}

void ProfileBuilder::LimitSample(const KeyLimits& limits) {
  State& state = *state_;
  assert(state.rows == 0);
  std::vector<uint64_t> slot_limits = state.SlotLimits(limits);
  bool limited = false;
  for (uint64_t& limit : slot_limits) {
    if (limit == 0) limit = RowSample::kUnlimited;
    limited = limited || limit != RowSample::kUnlimited;
  }
  if (limited) state.sample->LimitKeys(std::move(slot_limits));
}

bool ProfileBuilder::SampleExact() const { return state_->sample->Exact(); }

uint64_t ProfileBuilder::KeyLimitFor(uint64_t expected_rows, const ProfileOptions& options,
                                     double margin) {
  // Keys are uniform over 64 bits: a limit of f * 2^64 keeps a share f of the rows.
  const long double wanted = static_cast<long double>(margin) * options.sample_size;
  if (!(wanted < 0.5L * static_cast<long double>(expected_rows))) return RowSample::kUnlimited;
  if (!(wanted > 0)) return 0;
  return static_cast<uint64_t>(std::ldexp(wanted / static_cast<long double>(expected_rows), 64));
}

}  // namespace kiln::data
