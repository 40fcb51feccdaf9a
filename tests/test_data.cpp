#include <doctest/doctest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <string>
#include <vector>

#include "runtime/data/dataset.hpp"
#include "runtime/data/fashion_mnist.hpp"
#include "runtime/data/idx_file.hpp"

using namespace hydra;
namespace fs = std::filesystem;

namespace {

doctest::Contains has(const std::string& text) {
  return doctest::Contains(text.c_str());
}

// A fresh directory under the system temp dir, removed with its contents at scope exit.
struct TempDir {
  fs::path path;
  explicit TempDir(const std::string& tag) {
    path =
        fs::temp_directory_path() / ("hydra_test_data_" + tag + "_" + std::to_string(::getpid()));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

void write_bytes(const std::string& path, const std::vector<std::uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
}

std::vector<std::uint8_t> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<std::uint8_t>(std::istreambuf_iterator<char>(in), {});
}

// A 2 x 2 x 3 IDX file of unsigned bytes, written byte by byte.
std::vector<std::uint8_t> small_idx3() {
  std::vector<std::uint8_t> b = {0, 0, 0x08, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 3};
  for (std::uint8_t v = 0; v < 12; ++v)
    b.push_back(static_cast<std::uint8_t>(v * 20));
  return b;
}

Dataset numbered_dataset(std::int64_t n) {
  std::vector<float> x;
  std::vector<std::int32_t> y;
  for (std::int64_t i = 0; i < n; ++i) {
    x.push_back(static_cast<float>(i));
    x.push_back(static_cast<float>(-i));
    y.push_back(static_cast<std::int32_t>(i % 7));
  }
  return Dataset(Tensor::from_vector(x, {n, 2}), Tensor::from_ints(y, {n}));
}

}  // namespace

TEST_CASE("idx reader parses big-endian headers and round-trips plain and gzip files") {
  TempDir dir("roundtrip");
  write_bytes(dir.file("hand.idx"), small_idx3());
  IdxArray a = read_idx(dir.file("hand.idx"));
  CHECK(a.dims == Shape{2, 2, 3});
  CHECK(a.numel() == 12);
  CHECK(a.data[0] == 0);
  CHECK(a.data[11] == 220);
  CHECK(a.path == dir.file("hand.idx"));

  // A dimension above 255 exercises all four big-endian bytes.
  std::vector<std::uint8_t> big(70000);
  for (std::size_t i = 0; i < big.size(); ++i)
    big[i] = static_cast<std::uint8_t>(i * 7);
  write_idx(dir.file("big.idx"), {70000}, big);
  CHECK(read_bytes(dir.file("big.idx")).size() == 8 + 70000);
  CHECK(read_bytes(dir.file("big.idx"))[5] == 0x01);  // 70000 = 0x00011170
  write_idx(dir.file("big.idx.gz"), {70000}, big);
  CHECK(read_bytes(dir.file("big.idx.gz"))[0] == 0x1f);  // gzip magic
  CHECK(read_bytes(dir.file("big.idx.gz")).size() < 70000);
  for (const char* name : {"big.idx", "big.idx.gz"}) {
    IdxArray r = read_idx(dir.file(name));
    CHECK(r.dims == Shape{70000});
    CHECK(r.data == big);
  }
  // Zero samples are a valid file.
  write_idx(dir.file("empty.idx"), {0, 28, 28}, {});
  CHECK(read_idx(dir.file("empty.idx")).dims == Shape{0, 28, 28});

  CHECK(resolve_idx_path(dir.file("big.idx")) == dir.file("big.idx"));
  write_idx(dir.file("only_gz.gz"), {1}, {5});
  CHECK(resolve_idx_path(dir.file("only_gz")) == dir.file("only_gz.gz"));
  CHECK(resolve_idx_path(dir.file("nothing")) == dir.file("nothing"));
  CHECK_THROWS_WITH_AS(write_idx(dir.file("bad.idx"), {2, 2}, {1, 2, 3}),
                       doctest::Contains("3 bytes for dimensions [2, 2]"), Error);
}

TEST_CASE("idx reader rejects missing bad and truncated files with clear errors") {
  TempDir dir("bad");
  const std::string missing = dir.file("missing-idx3-ubyte");
  CHECK_THROWS_WITH_AS(read_idx(missing), has(missing + ": file not found"), Error);
  CHECK_THROWS_WITH_AS(read_idx(dir.path.string()), doctest::Contains("is a directory"), Error);

  auto expect_error = [&](const std::string& name, const std::vector<std::uint8_t>& bytes,
                          const std::string& problem) {
    CAPTURE(name);
    write_bytes(dir.file(name), bytes);
    CHECK_THROWS_WITH_AS(read_idx(dir.file(name)), has(problem), Error);
    CHECK_THROWS_WITH_AS(read_idx(dir.file(name)), has(dir.file(name)), Error);
  };
  const std::vector<std::uint8_t> good = small_idx3();

  expect_error("empty", {}, "truncated header (0 bytes");
  expect_error("short_magic", {0, 0, 8}, "truncated header (3 bytes");
  expect_error("text", {'h', 'e', 'l', 'l', 'o', '\n'}, "bad magic number 0x68656C6C");
  expect_error("rank0", {0, 0, 8, 0}, "bad magic number 0x00000800");
  expect_error("unknown_type", {0, 0, 0x42, 1, 0, 0, 0, 1, 7}, "bad magic number 0x00004201");
  expect_error("float_type", {0, 0, 0x0D, 1, 0, 0, 0, 1, 0, 0, 0, 0},
               "unsupported element type 0x0D (float32); only 0x08 (unsigned byte)");
  expect_error("short_dims", std::vector<std::uint8_t>(good.begin(), good.begin() + 10),
               "truncated header (3 dimensions need 12 bytes, found 6)");
  expect_error("short_data", std::vector<std::uint8_t>(good.begin(), good.end() - 1),
               "truncated data (dimensions [2, 2, 3] need 12 bytes, found 11)");
  std::vector<std::uint8_t> longer = good;
  longer.push_back(1);
  expect_error("trailing", longer, "unexpected data after the 12 bytes");
  expect_error("huge", {0, 0, 8, 2, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
               "implausible dimensions");

  // A gzip stream cut short.
  std::vector<std::uint8_t> payload(5000);
  for (std::size_t i = 0; i < payload.size(); ++i)
    payload[i] = static_cast<std::uint8_t>(i % 251);
  write_idx(dir.file("whole.gz"), {5000}, payload);
  const std::vector<std::uint8_t> gz = read_bytes(dir.file("whole.gz"));
  expect_error("cut.gz", std::vector<std::uint8_t>(gz.begin(), gz.begin() + gz.size() / 2),
               "truncated data (dimensions [5000] need 5000 bytes");
  // A corrupted gzip stream (bytes flipped in the middle of the deflate data).
  std::vector<std::uint8_t> corrupt = gz;
  for (std::size_t i = 20; i < 40 && i < corrupt.size(); ++i)
    corrupt[i] ^= 0x5a;
  write_bytes(dir.file("corrupt.gz"), corrupt);
  CHECK_THROWS_WITH_AS(read_idx(dir.file("corrupt.gz")), has(dir.file("corrupt.gz")), Error);

  // Images and labels that do not pair up.
  write_idx(dir.file("images"), {3, 2, 2}, std::vector<std::uint8_t>(12, 1));
  write_idx(dir.file("labels4"), {4}, {0, 1, 2, 3});
  write_idx(dir.file("labels2d"), {3, 1}, {0, 1, 2});
  write_idx(dir.file("labels3"), {3}, {0, 1, 2});
  CHECK_THROWS_WITH_AS(read_idx_labelled(dir.file("images"), dir.file("labels4")),
                       doctest::Contains("do not pair up: 3 images [3, 2, 2] but 4 labels"), Error);
  CHECK_THROWS_WITH_AS(read_idx_labelled(dir.file("images"), dir.file("labels2d")),
                       doctest::Contains("expected 1 dimension [N], found [3, 1]"), Error);
  CHECK_THROWS_WITH_AS(read_idx_labelled(dir.file("images"), dir.file("nope")),
                       doctest::Contains("nope: file not found"), Error);
  IdxLabelled ok = read_idx_labelled(dir.file("images"), dir.file("labels3"));
  CHECK(ok.images.dims == Shape{3, 2, 2});
  CHECK(ok.labels.data == std::vector<std::uint8_t>{0, 1, 2});
}

TEST_CASE("dataset slices splits and gathers subsets") {
  Dataset d = numbered_dataset(10);
  CHECK(d.size() == 10);
  CHECK(d.sample_shape() == Shape{2});
  CHECK(d.sample_numel() == 2);
  CHECK(d.num_classes() == 7);

  auto [a, b] = d.split(7);
  CHECK(a.size() == 7);
  CHECK(b.size() == 3);
  CHECK(b.inputs().shares_storage_with(d.inputs()));
  CHECK(b.inputs().to_floats() == std::vector<float>{7, -7, 8, -8, 9, -9});
  CHECK(b.labels().to_ints() == std::vector<std::int32_t>{0, 1, 2});
  CHECK(d.slice(3, 3).size() == 0);
  CHECK_THROWS_WITH_AS(d.slice(4, 11), doctest::Contains("out of range for a dataset of 10"),
                       Error);
  CHECK_THROWS_AS(d.split(11), Error);

  Dataset s = d.subset({9, 0, 9});
  CHECK_FALSE(s.inputs().shares_storage_with(d.inputs()));
  CHECK(s.inputs().to_floats() == std::vector<float>{9, -9, 0, 0, 9, -9});
  CHECK(s.labels().to_ints() == std::vector<std::int32_t>{2, 0, 2});
  CHECK_THROWS_WITH_AS(d.subset({10}), doctest::Contains("sample index 10 out of range"), Error);

  CHECK_THROWS_WITH_AS(Dataset(Tensor::zeros({3, 2}), Tensor::from_ints({0, 1}, {2})),
                       doctest::Contains("3 inputs [3, 2] but 2 labels"), Error);
  CHECK_THROWS_AS(Dataset(Tensor::zeros({3, 2}), Tensor::zeros({3})), Error);  // f32 labels
  CHECK_THROWS_AS(Dataset(Tensor::zeros({3, 2}, DType::f64), Tensor::from_ints({0, 1, 2}, {3})),
                  Error);
}

TEST_CASE("seeded permutations are deterministic permutations") {
  for (std::int64_t n : {0, 1, 2, 17, 1000}) {
    std::vector<std::int64_t> p = seeded_permutation(n, 42);
    CHECK(p == seeded_permutation(n, 42));
    std::vector<std::int64_t> sorted = p, identity(static_cast<std::size_t>(n));
    std::sort(sorted.begin(), sorted.end());
    std::iota(identity.begin(), identity.end(), std::int64_t{0});
    CHECK(sorted == identity);
  }
  CHECK(seeded_permutation(1000, 1) != seeded_permutation(1000, 2));
  // A fixed reference: the order must not change across platforms, compilers or releases.
  CHECK(seeded_permutation(8, 7) == std::vector<std::int64_t>{5, 3, 7, 4, 6, 0, 2, 1});
}

TEST_CASE("data loader shuffles deterministically and yields every sample once per epoch") {
  const std::int64_t n = 103;
  Dataset d = numbered_dataset(n);
  DataLoaderOptions opt;
  opt.batch_size = 10;
  opt.shuffle = true;
  opt.seed = 1234;
  DataLoader loader(d, opt);
  DataLoader twin(d, opt);
  CHECK(loader.num_batches() == 11);
  CHECK(loader.num_samples() == n);

  std::vector<std::int64_t> previous_order;
  for (std::int64_t epoch = 0; epoch < 3; ++epoch) {
    CAPTURE(epoch);
    loader.start_epoch(epoch);
    twin.start_epoch(epoch);
    CHECK(loader.order() == twin.order());    // same (seed, epoch), same order
    CHECK(loader.order() != previous_order);  // a new order every epoch
    previous_order = loader.order();

    std::vector<int> seen(static_cast<std::size_t>(n), 0);
    std::vector<std::int64_t> sample_order;
    Batch b;
    std::int64_t batches = 0;
    while (loader.next(b)) {
      CHECK(b.index == batches);
      CHECK(b.size() == (batches < 10 ? 10 : 3));
      CHECK(b.inputs.shape() == Shape{b.size(), 2});
      const std::vector<float> x = b.inputs.to_floats();
      const std::vector<std::int32_t> y = b.labels.to_ints();
      for (std::int64_t i = 0; i < b.size(); ++i) {
        const auto id = static_cast<std::int64_t>(x[static_cast<std::size_t>(2 * i)]);
        CHECK(x[static_cast<std::size_t>(2 * i + 1)] == -static_cast<float>(id));  // rows intact
        CHECK(y[static_cast<std::size_t>(i)] == id % 7);  // labels travel with their inputs
        ++seen[static_cast<std::size_t>(id)];
        sample_order.push_back(id);
      }
      ++batches;
    }
    CHECK(batches == 11);
    CHECK_FALSE(loader.next(b));
    CHECK(std::all_of(seen.begin(), seen.end(), [](int c) { return c == 1; }));
    CHECK(sample_order == loader.order());
  }
  // Another seed, another order; the same seed replays epoch 1 exactly.
  opt.seed = 99;
  DataLoader other(d, opt);
  other.start_epoch(1);
  loader.start_epoch(1);
  CHECK(other.order() != loader.order());
  DataLoader replay(d, {.batch_size = 10, .shuffle = true, .drop_last = false, .seed = 1234});
  replay.start_epoch(1);
  CHECK(replay.order() == loader.order());
  CHECK(replay.batch(4).inputs.to_floats() == loader.batch(4).inputs.to_floats());
}

TEST_CASE("data loader drop_last and unshuffled views") {
  Dataset d = numbered_dataset(25);
  DataLoader plain(d, {.batch_size = 10, .shuffle = false, .drop_last = false, .seed = 0});
  CHECK(plain.num_batches() == 3);
  Batch last = plain.batch(2);
  CHECK(last.size() == 5);
  CHECK(last.inputs.shares_storage_with(d.inputs()));  // unshuffled batches are views
  CHECK(last.labels.to_ints() == std::vector<std::int32_t>{6, 0, 1, 2, 3});
  CHECK_THROWS_WITH_AS(plain.batch(3), doctest::Contains("the epoch has 3 batches"), Error);

  DataLoader dropping(d, {.batch_size = 10, .shuffle = true, .drop_last = true, .seed = 5});
  CHECK(dropping.num_batches() == 2);
  CHECK(dropping.num_samples() == 20);
  Batch b;
  std::int64_t count = 0;
  while (dropping.next(b)) {
    CHECK(b.size() == 10);
    CHECK_FALSE(b.inputs.shares_storage_with(d.inputs()));
    ++count;
  }
  CHECK(count == 2);

  DataLoader pinned(d, {.batch_size = 8,
                        .shuffle = false,
                        .drop_last = false,
                        .seed = 0,
                        .device = Device::pinned()});
  CHECK(pinned.batch(0).inputs.device() == Device::pinned());
  CHECK(pinned.batch(0).inputs.to_floats()[2] == 1.0f);

  CHECK_THROWS_WITH_AS(DataLoader(d, {.batch_size = 0}),
                       doctest::Contains("batch_size must be at least 1"), Error);
  CHECK_THROWS_WITH_AS(DataLoader(d, {.batch_size = 4, .device = Device::cuda(0)}),
                       doctest::Contains("host-accessible"), Error);
}

TEST_CASE("fashion mnist loader explains how to fetch missing files") {
  TempDir dir("fm_missing");
  CHECK_THROWS_WITH_AS(load_fashion_mnist(dir.path.string(), FashionMnistSplit::train),
                       doctest::Contains("fetch_fashion_mnist.sh"), Error);
  CHECK_THROWS_WITH_AS(load_fashion_mnist(dir.path.string(), FashionMnistSplit::test),
                       doctest::Contains("t10k-images-idx3-ubyte"), Error);
  // Well-formed IDX files of the wrong image size are rejected by name.
  write_idx(dir.file("t10k-images-idx3-ubyte"), {2, 4, 4}, std::vector<std::uint8_t>(32, 0));
  write_idx(dir.file("t10k-labels-idx1-ubyte.gz"), {2}, {0, 1});
  CHECK_THROWS_WITH_AS(load_fashion_mnist(dir.path.string(), FashionMnistSplit::test),
                       doctest::Contains("holds images [2, 4, 4], expected [N, 28, 28]"), Error);
  // A tiny valid split: scaling, normalisation and the label range.
  std::vector<std::uint8_t> px(2 * 28 * 28, 0);
  px[0] = 255;
  write_idx(dir.file("t10k-images-idx3-ubyte"), {2, 28, 28}, px);
  Dataset raw = load_fashion_mnist(dir.path.string(), FashionMnistSplit::test, false);
  CHECK(raw.inputs().shape() == Shape{2, 1, 28, 28});
  CHECK(raw.inputs().to_floats()[0] == 1.0f);
  CHECK(raw.inputs().to_floats()[1] == 0.0f);
  Dataset norm = load_fashion_mnist(dir.path.string(), FashionMnistSplit::test);
  CHECK(norm.inputs().to_floats()[0] == doctest::Approx((1 - 0.2860) / 0.3530).epsilon(1e-6));
  CHECK(norm.inputs().to_floats()[1] == doctest::Approx(-0.2860 / 0.3530).epsilon(1e-6));
  write_idx(dir.file("t10k-labels-idx1-ubyte.gz"), {2}, {0, 10});
  CHECK_THROWS_WITH_AS(load_fashion_mnist(dir.path.string(), FashionMnistSplit::test),
                       doctest::Contains("label 10 of sample 1 is outside [0, 10)"), Error);
  CHECK(std::string(fashion_mnist_class_name(9)) == "Ankle boot");
}

TEST_CASE("data: Fashion-MNIST loads 60000 training and 10000 test images") {
  const std::string dir = default_fashion_mnist_dir();
  Dataset train = load_fashion_mnist(dir, FashionMnistSplit::train, false);
  Dataset test = load_fashion_mnist(dir, FashionMnistSplit::test);
  CHECK(train.size() == 60000);
  CHECK(test.size() == 10000);
  CHECK(train.inputs().shape() == Shape{60000, 1, 28, 28});
  CHECK(test.inputs().shape() == Shape{10000, 1, 28, 28});
  CHECK(train.labels().dtype() == DType::i32);
  CHECK(train.num_classes() == 10);
  CHECK(test.num_classes() == 10);

  // Balanced classes: 6000 / 1000 of each.
  for (const Dataset* d : {&train, &test}) {
    std::vector<std::int64_t> counts(10, 0);
    std::int64_t out_of_range = 0;
    for (std::int32_t l : d->labels().to_ints()) {
      if (l < 0 || l >= 10)
        ++out_of_range;
      else
        ++counts[static_cast<std::size_t>(l)];
    }
    CHECK(out_of_range == 0);
    for (auto c : counts)
      CHECK(c == d->size() / 10);
  }
  // Raw pixels in [0, 1] with the published mean and standard deviation.
  const float* x = train.inputs().data_as<float>();
  const std::int64_t total = train.inputs().numel();
  double sum = 0, sum_sq = 0;
  float lo = 1, hi = 0;
  for (std::int64_t i = 0; i < total; ++i) {
    sum += x[i];
    sum_sq += double{x[i]} * x[i];
    lo = std::min(lo, x[i]);
    hi = std::max(hi, x[i]);
  }
  const double mean = sum / static_cast<double>(total);
  const double stdev = std::sqrt(sum_sq / static_cast<double>(total) - mean * mean);
  CHECK(lo == 0.0f);
  CHECK(hi == 1.0f);
  CHECK(mean == doctest::Approx(kFashionMnistMean).epsilon(0.001));
  CHECK(stdev == doctest::Approx(kFashionMnistStd).epsilon(0.001));
  // The normalised test split is roughly standardised too.
  const std::vector<float> t = test.inputs().slice(0, 1000).to_floats();
  double tm = 0;
  for (float v : t)
    tm += v;
  CHECK(std::abs(tm / static_cast<double>(t.size())) < 0.1);
}
