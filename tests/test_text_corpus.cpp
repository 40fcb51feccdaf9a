#include <doctest/doctest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <set>
#include <string>
#include <vector>

#include "kernels/core/error.hpp"
#include "runtime/data/dataset.hpp"
#include "runtime/data/text_corpus.hpp"

using namespace hydra;
namespace fs = std::filesystem;

namespace {

std::string temp_file(const std::string& name) {
  return (fs::temp_directory_path() /
          ("hydra_test_text_" + std::to_string(::getpid()) + "_" + name))
      .string();
}

// ids[i] = i, so every token names its position in the text.
std::vector<std::int32_t> positions(std::int32_t n) {
  std::vector<std::int32_t> ids(static_cast<std::size_t>(n));
  std::iota(ids.begin(), ids.end(), 0);
  return ids;
}

std::int32_t at(const Tensor& t, std::int64_t row, std::int64_t col) {
  return t.data_as<std::int32_t>()[row * t.dim(1) + col];
}

}  // namespace

TEST_CASE("char vocabulary is the sorted distinct bytes and round-trips text") {
  const CharVocab v = CharVocab::from_text("hello world");
  CHECK(v.chars() == " dehlorw");
  CHECK(v.size() == 8);
  CHECK(v.id(' ') == 0);
  CHECK(v.id('w') == 7);
  CHECK(v.byte(3) == 'h');
  CHECK(v.contains('o'));
  CHECK_FALSE(v.contains('z'));
  const std::vector<std::int32_t> ids = v.encode("hello world");
  CHECK(ids == std::vector<std::int32_t>{3, 2, 4, 4, 5, 0, 7, 5, 6, 4, 1});
  CHECK(v.decode(ids) == "hello world");
  CHECK(v.decode(v.encode("low")) == "low");
  CHECK_THROWS_WITH_AS(v.encode("hz"), doctest::Contains("byte 'z' is not in the vocabulary"),
                       Error);
  CHECK_THROWS_WITH_AS(v.decode(std::vector<std::int32_t>{8}),
                       doctest::Contains("token id 8 outside [0, 8)"), Error);
  CHECK_THROWS_AS(v.decode(std::vector<std::int32_t>{-1}), Error);

  // Bytes sort as unsigned: 0x0A < 'a' < 0xA9 < 0xC3.
  const CharVocab u = CharVocab::from_text(
      "\xC3\xA9"
      "a\n");
  CHECK(u.chars() == "\na\xA9\xC3");
  CHECK(u.id('\xC3') == 3);
  CHECK_THROWS_WITH_AS(u.id('\x01'), doctest::Contains("byte 0x01"), Error);

  const CharVocab empty;
  CHECK(empty.size() == 0);
  CHECK_FALSE(empty.contains('a'));
  CHECK_THROWS_AS(empty.id('a'), Error);

  const TextCorpus c = make_text_corpus("abracadabra");
  CHECK(c.vocab.chars() == "abcdr");
  CHECK(c.ids.size() == 11);
  CHECK(c.vocab.decode(c.ids) == "abracadabra");
}

TEST_CASE("language model windows have labels shifted by one and a split without overlap") {
  const std::vector<std::int32_t> ids = positions(100);
  const LmDatasets d = make_lm_datasets(ids, {.context = 8, .val_fraction = 0.2});
  CHECK(d.split_position == 80);
  // Train: windows start at 0, 8, ..., 64 (the window at 72 would need label 80).
  REQUIRE(d.train.size() == 9);
  CHECK(d.train.inputs().dtype() == DType::i32);
  CHECK(d.train.inputs().shape() == Shape{9, 8});
  CHECK(d.train.labels().shape() == Shape{9, 8});
  CHECK(d.train.sample_shape() == Shape{8});
  CHECK(d.train.label_shape() == Shape{8});
  CHECK(d.train.label_numel() == 8);
  for (std::int64_t k = 0; k < d.train.size(); ++k)
    for (std::int64_t t = 0; t < 8; ++t) {
      CHECK(at(d.train.inputs(), k, t) == 8 * k + t);
      CHECK(at(d.train.labels(), k, t) == 8 * k + t + 1);
    }
  // Validation: ids 80..99, windows start at 80 and 88.
  REQUIRE(d.validation.size() == 2);
  CHECK(at(d.validation.inputs(), 0, 0) == 80);
  CHECK(at(d.validation.labels(), 1, 7) == 96);
  // No id of one part appears in the other, as input or label.
  const auto all = [](const Dataset& ds) {
    std::set<std::int32_t> s;
    for (const auto v : ds.inputs().to_ints())
      s.insert(v);
    for (const auto v : ds.labels().to_ints())
      s.insert(v);
    return s;
  };
  const std::set<std::int32_t> train_ids = all(d.train), val_ids = all(d.validation);
  CHECK(*train_ids.rbegin() < 80);
  CHECK(*val_ids.begin() >= 80);
  CHECK(d.train.num_classes() == 73);  // largest label 72

  // Overlapping windows with a stride.
  const LmDatasets s = make_lm_datasets(ids, {.context = 4, .stride = 1, .val_fraction = 0.1});
  CHECK(s.split_position == 90);
  CHECK(s.train.size() == 86);  // starts 0..85
  CHECK(at(s.train.inputs(), 85, 3) == 88);
  CHECK(at(s.train.labels(), 85, 3) == 89);
  CHECK(s.validation.size() == 6);  // starts 90..95

  // No validation part, and a validation part too short for a window.
  const LmDatasets n = make_lm_datasets(ids, {.context = 10, .val_fraction = 0});
  CHECK(n.train.size() == 9);
  CHECK(n.validation.size() == 0);
  const LmDatasets tiny = make_lm_datasets(ids, {.context = 10, .val_fraction = 0.05});
  CHECK(tiny.validation.size() == 0);
  CHECK(tiny.validation.inputs().shape() == Shape{0, 10});

  CHECK_THROWS_WITH_AS(make_lm_datasets(ids, {.context = 0}), doctest::Contains("context"), Error);
  CHECK_THROWS_AS(make_lm_datasets(ids, {.context = 4, .stride = -1}), Error);
  CHECK_THROWS_WITH_AS(make_lm_datasets(ids, {.context = 4, .val_fraction = 1.0}),
                       doctest::Contains("val_fraction"), Error);
  CHECK_THROWS_WITH_AS(make_lm_datasets(ids, {.context = 100, .val_fraction = 0}),
                       doctest::Contains("too short"), Error);
}

TEST_CASE("datasets of i32 sequences batch and gather whole rows") {
  const std::vector<std::int32_t> ids = positions(200);
  const LmDatasets d = make_lm_datasets(ids, {.context = 5, .val_fraction = 0});
  const Dataset& train = d.train;  // starts 0, 5, ..., 190: 39 windows
  REQUIRE(train.size() == 39);

  DataLoader loader(train, {.batch_size = 8, .shuffle = true, .seed = 3});
  std::multiset<std::int32_t> starts;
  Batch b;
  while (loader.next(b)) {
    CHECK(b.inputs.dtype() == DType::i32);
    CHECK(b.inputs.shape() == Shape{b.size(), 5});
    CHECK(b.labels.shape() == Shape{b.size(), 5});
    for (std::int64_t r = 0; r < b.size(); ++r) {
      starts.insert(at(b.inputs, r, 0));
      CHECK(at(b.inputs, r, 0) % 5 == 0);
      for (std::int64_t t = 0; t < 5; ++t) {
        CHECK(at(b.inputs, r, t) == at(b.inputs, r, 0) + t);
        CHECK(at(b.labels, r, t) == at(b.inputs, r, t) + 1);
      }
    }
  }
  CHECK(starts.size() == 39);
  CHECK(std::set<std::int32_t>(starts.begin(), starts.end()).size() == 39);

  const Dataset sub = train.subset({38, 0});
  CHECK(sub.inputs().to_ints() ==
        std::vector<std::int32_t>{190, 191, 192, 193, 194, 0, 1, 2, 3, 4});
  CHECK(sub.labels().to_ints() ==
        std::vector<std::int32_t>{191, 192, 193, 194, 195, 1, 2, 3, 4, 5});

  // The constructor's checks, generalised: i32 inputs and [N, ...] labels are fine, other
  // dtypes and a mismatched N are not.
  CHECK_NOTHROW(Dataset(Tensor::from_ints({1, 2, 3}, {3}), Tensor::from_ints({0, 1, 2}, {3})));
  CHECK_THROWS_WITH_AS(
      Dataset(Tensor::from_ints({1, 2, 3, 4}, {2, 2}), Tensor::from_ints({0, 1, 2}, {3, 1})),
      doctest::Contains("2 inputs [2, 2] but 3 labels [3, 1]"), Error);
  CHECK_THROWS_AS(Dataset(Tensor::zeros({2, 2}), Tensor::zeros({2, 2})), Error);
  CHECK_THROWS_AS(Dataset(Tensor::zeros({2, 2}, DType::f64), Tensor::from_ints({0, 1}, {2})),
                  Error);
  CHECK(Dataset(Tensor::zeros({2, 3}), Tensor::from_ints({0, 4, 1, 2}, {2, 2})).num_classes() == 5);
  CHECK(Dataset(Tensor::zeros({2, 3}), Tensor::from_ints({0, 4}, {2})).label_numel() == 1);
}

TEST_CASE("text corpus files load and missing or empty ones fail clearly") {
  const std::string path = temp_file("corpus.txt");
  {
    std::ofstream out(path, std::ios::binary);
    out << "To be, or not to be:\nthat is the question.\n";
  }
  const TextCorpus c = load_text_corpus(path);
  CHECK(c.path == path);
  CHECK(c.text.size() == 43);
  CHECK(c.vocab.decode(c.ids) == c.text);
  CHECK(c.vocab.chars().front() == '\n');
  fs::remove(path);

  CHECK_THROWS_WITH_AS(load_text_corpus(path),
                       doctest::Contains((path + ": file not found").c_str()), Error);
  CHECK_THROWS_WITH_AS(load_kjv_corpus(path), doctest::Contains("fetch_bible.sh"), Error);
  CHECK_THROWS_WITH_AS(load_text_corpus(fs::temp_directory_path().string()),
                       doctest::Contains("not a regular file"), Error);
  { std::ofstream out(path, std::ios::binary); }
  CHECK_THROWS_WITH_AS(load_text_corpus(path), doctest::Contains("is empty"), Error);
  fs::remove(path);
  CHECK(default_kjv_path().size() > std::string("/bible/kjv.txt").size());
  CHECK(default_kjv_path().ends_with("/bible/kjv.txt"));
}

TEST_CASE("text: the King James Bible corpus loads") {
  const TextCorpus kjv = load_kjv_corpus();
  CHECK(kjv.text.size() > 4u * 1024 * 1024);
  // Letters, digits, punctuation, space and newline: about 75 distinct ASCII bytes.
  CHECK(kjv.vocab.size() >= 60);
  CHECK(kjv.vocab.size() <= 100);
  for (const char c : kjv.vocab.chars()) {
    CHECK(static_cast<unsigned char>(c) < 0x80);
  }
  CHECK(kjv.vocab.contains('\n'));
  CHECK(kjv.vocab.contains('Z'));
  CHECK(kjv.text.find("In the beginning God created the heaven and the earth.") <
        kjv.text.size() / 100);
  CHECK(kjv.text.find("Revelation 22") > kjv.text.size() / 2);
  CHECK(kjv.ids.size() == kjv.text.size());
  CHECK(kjv.vocab.decode(std::span(kjv.ids).first(100000)) == kjv.text.substr(0, 100000));

  const LmDatasets d = make_lm_datasets(kjv.ids, {.context = 256, .val_fraction = 0.1});
  CHECK(d.train.size() > 14000);
  CHECK(d.validation.size() > 1500);
  CHECK(d.train.num_classes() <= kjv.vocab.size());
}
