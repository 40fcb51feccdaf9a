#include "runtime/data/idx_file.hpp"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>

namespace hydra {

namespace {

constexpr std::int64_t kMaxIdxBytes = std::int64_t{1} << 40;  // larger is a corrupt header
constexpr int kMaxIdxRank = 16;

std::string hex(std::uint32_t v, int digits) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%0*X", digits, v);
  return buf;
}

const char* idx_type_name(std::uint8_t t) {
  switch (t) {
    case 0x08:
      return "unsigned byte";
    case 0x09:
      return "signed byte";
    case 0x0B:
      return "int16";
    case 0x0C:
      return "int32";
    case 0x0D:
      return "float32";
    case 0x0E:
      return "float64";
    default:
      return "unknown type";
  }
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// A gzFile that closes itself; reads plain files transparently.
class GzFile {
 public:
  GzFile(const std::string& path, const char* mode) : path_(path), f_(gzopen(path.c_str(), mode)) {
    if (!f_)
      throw Error("IDX file " + path + ": cannot open (" +
                  (errno ? std::strerror(errno) : std::string("out of memory")) + ")");
    gzbuffer(f_, 1 << 17);
  }
  ~GzFile() {
    if (f_) gzclose(f_);
  }
  GzFile(const GzFile&) = delete;
  GzFile& operator=(const GzFile&) = delete;

  // Reads up to `n` bytes; returns how many were read (fewer only at the end of the data).
  std::int64_t read(void* dst, std::int64_t n) {
    auto* p = static_cast<unsigned char*>(dst);
    std::int64_t done = 0;
    while (done < n) {
      const auto chunk = static_cast<unsigned>(std::min<std::int64_t>(n - done, 1 << 30));
      const int got = gzread(f_, p + done, chunk);
      if (got < 0)
        throw Error("IDX file " + path_ + ": read failed, corrupt gzip data? (" + error_text() +
                    ")");
      if (got == 0) break;
      done += got;
    }
    return done;
  }

  void write(const void* src, std::int64_t n) {
    const auto* p = static_cast<const unsigned char*>(src);
    std::int64_t done = 0;
    while (done < n) {
      const auto chunk = static_cast<unsigned>(std::min<std::int64_t>(n - done, 1 << 30));
      const int put = gzwrite(f_, p + done, chunk);
      if (put <= 0) throw Error("IDX file " + path_ + ": write failed (" + error_text() + ")");
      done += put;
    }
  }

  void close() {
    const int rc = gzclose(f_);
    f_ = nullptr;
    if (rc != Z_OK)
      throw Error("IDX file " + path_ + ": close failed (zlib error " + std::to_string(rc) + ")");
  }

  // zlib's description of the last error ("unexpected end of file" for a truncated stream), or
  // "" when there was none.
  std::string error_text() {
    int code = Z_OK;
    const char* msg = gzerror(f_, &code);
    if (code == Z_OK) return "";
    if (code == Z_ERRNO) return std::strerror(errno);
    std::string text = msg ? msg : "zlib error " + std::to_string(code);
    if (text.rfind(path_ + ": ", 0) == 0) text.erase(0, path_.size() + 2);  // zlib adds the path
    return text;
  }

 private:
  std::string path_;
  gzFile f_;
};

std::uint32_t big_endian_u32(const unsigned char* b) {
  return (std::uint32_t{b[0]} << 24) | (std::uint32_t{b[1]} << 16) | (std::uint32_t{b[2]} << 8) |
         std::uint32_t{b[3]};
}

void put_big_endian_u32(unsigned char* b, std::uint32_t v) {
  b[0] = static_cast<unsigned char>(v >> 24);
  b[1] = static_cast<unsigned char>(v >> 16);
  b[2] = static_cast<unsigned char>(v >> 8);
  b[3] = static_cast<unsigned char>(v);
}

// " (zlib: ...)" when zlib has something to say about a short read, else "".
std::string zlib_note(GzFile& f) {
  const std::string e = f.error_text();
  return e.empty() ? "" : " (zlib: " + e + ")";
}

}  // namespace

std::string resolve_idx_path(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::exists(path, ec)) return path;
  if (std::filesystem::exists(path + ".gz", ec)) return path + ".gz";
  return path;
}

IdxArray read_idx(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) throw Error("IDX file " + path + ": file not found");
  if (std::filesystem::is_directory(path, ec))
    throw Error("IDX file " + path + ": is a directory, not a file");

  GzFile f(path, "rb");
  IdxArray out;
  out.path = path;

  unsigned char magic[4];
  const std::int64_t got_magic = f.read(magic, 4);
  if (got_magic < 4)
    throw Error("IDX file " + path + ": truncated header (" + std::to_string(got_magic) +
                " bytes; an IDX file starts with a 4-byte magic number)" + zlib_note(f));
  const std::uint32_t m = big_endian_u32(magic);
  if (magic[0] != 0 || magic[1] != 0 || magic[3] == 0 || magic[3] > kMaxIdxRank ||
      std::string(idx_type_name(magic[2])) == "unknown type")
    throw Error("IDX file " + path + ": bad magic number " + hex(m, 8) +
                " (not an IDX file; expected 0x000008NN: two zero bytes, the type byte 0x08, " +
                "then the number of dimensions NN from 1 to " + std::to_string(kMaxIdxRank) + ")");
  if (magic[2] != kIdxTypeUByte)
    throw Error("IDX file " + path + ": unsupported element type " + hex(magic[2], 2) + " (" +
                idx_type_name(magic[2]) + "); only 0x08 (unsigned byte) is supported");

  const int rank = magic[3];
  std::vector<unsigned char> dim_bytes(static_cast<std::size_t>(rank) * 4);
  const std::int64_t got_dims = f.read(dim_bytes.data(), rank * 4);
  if (got_dims < rank * 4)
    throw Error("IDX file " + path + ": truncated header (" + std::to_string(rank) +
                " dimensions need " + std::to_string(rank * 4) + " bytes, found " +
                std::to_string(got_dims) + ")" + zlib_note(f));
  std::int64_t numel = 1;
  for (int i = 0; i < rank; ++i) {
    const std::int64_t d = big_endian_u32(dim_bytes.data() + 4 * i);
    out.dims.push_back(d);
    if (d != 0 && numel > kMaxIdxBytes / d)
      throw Error("IDX file " + path + ": implausible dimensions (more than 1 TiB of data); " +
                  "the header is corrupt");
    numel *= d;
  }

  out.data.resize(static_cast<std::size_t>(numel));
  const std::int64_t got = f.read(out.data.data(), numel);
  if (got < numel)
    throw Error("IDX file " + path + ": truncated data (dimensions " + shape_str(out.dims) +
                " need " + std::to_string(numel) + " bytes, found " + std::to_string(got) + ")" +
                zlib_note(f));
  unsigned char extra[64];
  const std::int64_t trailing = f.read(extra, sizeof extra);
  if (trailing > 0)
    throw Error("IDX file " + path + ": unexpected data after the " + std::to_string(numel) +
                " bytes that dimensions " + shape_str(out.dims) +
                " describe (wrong dimensions in the header?)");
  const std::string err = f.error_text();
  if (!err.empty()) throw Error("IDX file " + path + ": read failed (" + err + ")");
  return out;
}

void write_idx(const std::string& path, const Shape& dims, const std::vector<std::uint8_t>& data) {
  if (dims.empty() || static_cast<int>(dims.size()) > kMaxIdxRank)
    throw Error("write_idx " + path + ": rank " + std::to_string(dims.size()) +
                " not supported (1 to " + std::to_string(kMaxIdxRank) + ")");
  for (auto d : dims)
    if (d < 0 || d > std::numeric_limits<std::uint32_t>::max())
      throw Error("write_idx " + path + ": dimension out of range in " + shape_str(dims));
  if (shape_numel(dims) != static_cast<std::int64_t>(data.size()))
    throw Error("write_idx " + path + ": " + std::to_string(data.size()) +
                " bytes for dimensions " + shape_str(dims));
  // "T" writes without compression (gzip's transparent mode).
  GzFile f(path, ends_with(path, ".gz") ? "wb6" : "wbT");
  std::vector<unsigned char> header(4 + 4 * dims.size());
  header[2] = kIdxTypeUByte;
  header[3] = static_cast<unsigned char>(dims.size());
  for (std::size_t i = 0; i < dims.size(); ++i)
    put_big_endian_u32(header.data() + 4 + 4 * i, static_cast<std::uint32_t>(dims[i]));
  f.write(header.data(), static_cast<std::int64_t>(header.size()));
  f.write(data.data(), static_cast<std::int64_t>(data.size()));
  f.close();
}

IdxLabelled read_idx_labelled(const std::string& images_path, const std::string& labels_path) {
  IdxLabelled out{read_idx(images_path), read_idx(labels_path)};
  if (out.labels.dims.size() != 1)
    throw Error("IDX label file " + labels_path + ": expected 1 dimension [N], found " +
                shape_str(out.labels.dims));
  if (out.images.dims[0] != out.labels.dims[0])
    throw Error("IDX files " + images_path + " and " + labels_path + " do not pair up: " +
                std::to_string(out.images.dims[0]) + " images " + shape_str(out.images.dims) +
                " but " + std::to_string(out.labels.dims[0]) + " labels");
  return out;
}

}  // namespace hydra
