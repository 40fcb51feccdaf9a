#pragma once
// A text corpus for character-level language models: the text, its byte vocabulary and the
// text as token ids, cut into fixed-length windows for next-character prediction.
//
//   TextCorpus kjv = load_kjv_corpus();  // examples/data/fetch_bible.sh fetches it
//   LmDatasets d = make_lm_datasets(kjv.ids, {.context = 128, .val_fraction = 0.1});
//   // d.train.inputs() i32 [N, 128] token ids; d.train.labels() i32 [N, 128], the next ids
//   std::string s = kjv.vocab.decode(d.train.inputs().to_ints());
//
// Tokens are bytes: a multi-byte UTF-8 character is several tokens.
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/data/dataset.hpp"

namespace hydra {

// The sorted distinct bytes of a text; token id i is the i-th smallest byte.
class CharVocab {
 public:
  CharVocab();  // empty
  static CharVocab from_text(std::string_view text);

  std::int64_t size() const { return static_cast<std::int64_t>(chars_.size()); }
  const std::string& chars() const { return chars_; }  // the bytes in id order
  bool contains(char c) const { return id_of_[static_cast<unsigned char>(c)] >= 0; }
  // Throws hydra::Error for a byte outside the vocabulary / an id outside [0, size()).
  std::int32_t id(char c) const;
  char byte(std::int32_t id) const;

  std::vector<std::int32_t> encode(std::string_view text) const;  // throws as id()
  std::string decode(std::span<const std::int32_t> ids) const;    // throws as byte()

 private:
  std::string chars_;
  std::int32_t id_of_[256];  // -1 for bytes not in the vocabulary
};

struct TextCorpus {
  std::string path;  // where it was loaded from ("" when made from a string)
  std::string text;
  CharVocab vocab;                // of the whole text
  std::vector<std::int32_t> ids;  // text encoded with vocab; ids.size() == text.size()
};

// The corpus of `text` (which may be empty: an empty vocabulary).
TextCorpus make_text_corpus(std::string text);
// Reads a whole file as bytes. Throws hydra::Error naming the path when it is missing, not a
// regular file, unreadable or empty.
TextCorpus load_text_corpus(const std::string& path);

// default_data_dir() + "/bible/kjv.txt": the King James Bible as plain ASCII text (about
// 4.3 MB), written by examples/data/fetch_bible.sh.
std::string default_kjv_path();
// load_text_corpus(path); when the file is missing the error says how to fetch it.
TextCorpus load_kjv_corpus(const std::string& path = default_kjv_path());

struct LmWindowOptions {
  std::int64_t context = 128;  // T: characters per window
  // Distance between the starts of consecutive windows; 0 means `context` (windows tile the
  // text without overlap, every character is predicted once per epoch). A stride below context
  // multiplies memory by about context / stride.
  std::int64_t stride = 0;
  // The last round(fraction * length) ids are for validation, the rest for training.
  double val_fraction = 0.1;
};

struct LmDatasets {
  Dataset train, validation;
  std::int64_t split_position = 0;  // ids [0, split_position) train, the rest validation
};

// Next-token windows over `ids`: sample k of a part starting at offset o has inputs
// ids[o + k*stride + t] and labels ids[o + k*stride + t + 1] for t in [0, T); inputs and labels
// are i32 [N, T]. The text is split by position first and windows never cross the split, so
// no id (input or label) of the validation part is ever seen in training. A part too short for
// one window (T + 1 ids) gives an empty dataset [0, T]. Throws hydra::Error when context < 1,
// stride < 0, val_fraction is outside [0, 1) or the training part holds no window.
LmDatasets make_lm_datasets(std::span<const std::int32_t> ids, const LmWindowOptions& options);

}  // namespace hydra
