#include "runtime/data/text_corpus.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "runtime/data/fashion_mnist.hpp"  // default_data_dir()

#ifndef HYDRA_SOURCE_DIR
#error "HYDRA_SOURCE_DIR must be defined (the repository root) by the build"
#endif

namespace hydra {

namespace {

std::string byte_str(char c) {
  const auto u = static_cast<unsigned char>(c);
  if (u >= 0x20 && u < 0x7F) return std::string("'") + c + "'";
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%02X", static_cast<unsigned>(u));
  return buf;
}

// Windows over ids[begin, end): inputs [N, T] and labels [N, T], the labels shifted by one.
Dataset windows(std::span<const std::int32_t> ids, std::int64_t begin, std::int64_t end,
                std::int64_t context, std::int64_t stride) {
  const std::int64_t length = end - begin;
  const std::int64_t n = length >= context + 1 ? (length - context - 1) / stride + 1 : 0;
  Tensor inputs = Tensor::empty({n, context}, DType::i32);
  Tensor labels = Tensor::empty({n, context}, DType::i32);
  if (n > 0) {
    std::int32_t* x = inputs.data_as<std::int32_t>();
    std::int32_t* y = labels.data_as<std::int32_t>();
    const auto bytes = static_cast<std::size_t>(context) * sizeof(std::int32_t);
    for (std::int64_t k = 0; k < n; ++k) {
      const std::int32_t* src = ids.data() + begin + k * stride;
      std::memcpy(x + k * context, src, bytes);
      std::memcpy(y + k * context, src + 1, bytes);
    }
  }
  return Dataset(inputs, labels);
}

}  // namespace

CharVocab::CharVocab() {
  std::fill(std::begin(id_of_), std::end(id_of_), -1);
}

CharVocab CharVocab::from_text(std::string_view text) {
  bool present[256] = {};
  for (const char c : text)
    present[static_cast<unsigned char>(c)] = true;
  CharVocab v;
  for (int b = 0; b < 256; ++b)
    if (present[b]) {
      v.id_of_[b] = static_cast<std::int32_t>(v.chars_.size());
      v.chars_ += static_cast<char>(b);
    }
  return v;
}

std::int32_t CharVocab::id(char c) const {
  const std::int32_t i = id_of_[static_cast<unsigned char>(c)];
  if (i < 0)
    throw Error("CharVocab: byte " + byte_str(c) + " is not in the vocabulary of " +
                std::to_string(size()) + " characters");
  return i;
}

char CharVocab::byte(std::int32_t id) const {
  if (id < 0 || id >= size())
    throw Error("CharVocab: token id " + std::to_string(id) + " outside [0, " +
                std::to_string(size()) + ")");
  return chars_[static_cast<std::size_t>(id)];
}

std::vector<std::int32_t> CharVocab::encode(std::string_view text) const {
  std::vector<std::int32_t> ids;
  ids.reserve(text.size());
  for (const char c : text)
    ids.push_back(id(c));
  return ids;
}

std::string CharVocab::decode(std::span<const std::int32_t> ids) const {
  std::string text;
  text.reserve(ids.size());
  for (const std::int32_t i : ids)
    text += byte(i);
  return text;
}

TextCorpus make_text_corpus(std::string text) {
  TextCorpus c;
  c.text = std::move(text);
  c.vocab = CharVocab::from_text(c.text);
  c.ids = c.vocab.encode(c.text);
  return c;
}

TextCorpus load_text_corpus(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::exists(path, ec)) throw Error("text corpus: " + path + ": file not found");
  if (!fs::is_regular_file(path, ec)) throw Error("text corpus: " + path + ": not a regular file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("text corpus: cannot open " + path + ": " + std::strerror(errno));
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw Error("text corpus: reading " + path + " failed: " + std::strerror(errno));
  if (text.empty()) throw Error("text corpus: " + path + " is empty");
  TextCorpus c = make_text_corpus(std::move(text));
  c.path = path;
  return c;
}

std::string default_kjv_path() {
  return default_data_dir() + "/bible/kjv.txt";
}

TextCorpus load_kjv_corpus(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec))
    throw Error("King James Bible: " + path + " not found. Fetch it by running " +
                std::string(HYDRA_SOURCE_DIR) +
                "/examples/data/fetch_bible.sh (it writes $HYDRA_DATA_DIR/bible/kjv.txt, by "
                "default <repo>/.data/bible/kjv.txt)");
  return load_text_corpus(path);
}

LmDatasets make_lm_datasets(std::span<const std::int32_t> ids, const LmWindowOptions& options) {
  const std::int64_t context = options.context;
  const std::int64_t stride = options.stride == 0 ? context : options.stride;
  check(context >= 1,
        "make_lm_datasets: context must be at least 1, got " + std::to_string(context));
  check(options.stride >= 0, "make_lm_datasets: stride must be >= 0 (0: the context), got " +
                                 std::to_string(options.stride));
  check(options.val_fraction >= 0 && options.val_fraction < 1,
        "make_lm_datasets: val_fraction must be in [0, 1), got " +
            std::to_string(options.val_fraction));
  const auto length = static_cast<std::int64_t>(ids.size());
  const auto val_length =
      static_cast<std::int64_t>(std::llround(options.val_fraction * static_cast<double>(length)));
  LmDatasets out;
  out.split_position = length - val_length;
  out.train = windows(ids, 0, out.split_position, context, stride);
  out.validation = windows(ids, out.split_position, length, context, stride);
  check(out.train.size() > 0, "make_lm_datasets: the training part (" +
                                  std::to_string(out.split_position) +
                                  " ids) is too short for one window of context " +
                                  std::to_string(context) + " (needs context + 1 ids)");
  return out;
}

}  // namespace hydra
