#pragma once
// IDX files (the MNIST / Fashion-MNIST container format), plain or gzip-compressed.
//
// Layout: a 4-byte big-endian magic 0x00 0x00 <type> <rank>, then `rank` big-endian uint32
// dimensions, then prod(dims) elements in row-major order. Only type 0x08 (unsigned byte) is
// supported. A file whose name ends in ".gz" is written compressed; reading detects gzip from
// the content, so either form can be read under any name.
//
// Every failure (missing file, bad magic, unsupported type, truncated or oversized data, images
// and labels that do not pair up) throws hydra::Error naming the file and the problem.
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/core/tensor.hpp"

namespace hydra {

inline constexpr std::uint8_t kIdxTypeUByte = 0x08;

struct IdxArray {
  std::string path;                // the file it was read from
  Shape dims;                      // e.g. [60000, 28, 28]
  std::vector<std::uint8_t> data;  // prod(dims) bytes, row-major
  std::int64_t numel() const { return shape_numel(dims); }
};

// Reads one IDX file of unsigned bytes.
IdxArray read_idx(const std::string& path);

// Writes `data` (prod(dims) bytes) as an IDX file of unsigned bytes; gzip-compressed when `path`
// ends in ".gz". Throws hydra::Error when the file cannot be written or the sizes disagree.
void write_idx(const std::string& path, const Shape& dims, const std::vector<std::uint8_t>& data);

// `path` when that file exists, else `path` + ".gz" when that exists, else `path` (so that
// read_idx reports the missing file under the name the caller asked for).
std::string resolve_idx_path(const std::string& path);

// An image file [N, ...] and its label file [N], read and checked to pair up: the labels are
// 1-d and both hold the same number N of samples.
struct IdxLabelled {
  IdxArray images;
  IdxArray labels;
};
IdxLabelled read_idx_labelled(const std::string& images_path, const std::string& labels_path);

}  // namespace hydra
