#include <doctest/doctest.h>

#include "kernels/core/memory_pool.hpp"
#include "kernels/core/stream.hpp"
#include "kernels/core/tensor.hpp"

using namespace hydra;

TEST_CASE("tensor views share storage and index correctly") {
  Tensor t = Tensor::from_vector(std::vector<float>{0, 1, 2, 3, 4, 5}, {2, 3});
  CHECK(t.is_contiguous());
  Tensor v = t.view({3, 2});
  CHECK(v.shares_storage_with(t));
  CHECK(v.shape() == Shape{3, 2});
  Tensor inferred = t.view({-1});
  CHECK(inferred.shape() == Shape{6});
  Tensor row = t.slice(1, 2);
  CHECK(row.shape() == Shape{1, 3});
  CHECK(row.to_floats() == std::vector<float>{3, 4, 5});
  Tensor tr = t.transpose(0, 1);
  CHECK_FALSE(tr.is_contiguous());
  CHECK(tr.contiguous().to_floats() == std::vector<float>{0, 3, 1, 4, 2, 5});
  Tensor col = t.narrow(1, 1, 2);
  CHECK(col.contiguous().to_floats() == std::vector<float>{1, 2, 4, 5});
  CHECK_THROWS_AS(tr.view({6}), Error);
  CHECK_THROWS_AS(t.view({4, 2}), Error);
  CHECK_THROWS_AS(t.slice(1, 3), Error);
  CHECK_THROWS_AS(t.data_as<double>(), Error);
}

TEST_CASE("tensor copies convert between dtypes and devices") {
  Tensor t = Tensor::from_vector(std::vector<double>{1.5, -2.25, 3}, {3}, DType::bf16);
  CHECK(t.to_doubles() == std::vector<double>{1.5, -2.25, 3});
  CHECK(bf16_to_f32(f32_to_bf16(1.0f / 3.0f)) == doctest::Approx(1.0 / 3.0).epsilon(0.004));
  Tensor c = t.to(Device::cpu(3));
  CHECK(c.device() == Device::cpu(3));
  CHECK_FALSE(c.shares_storage_with(t));
  CHECK(c.to_doubles() == t.to_doubles());
  Tensor z = Tensor::zeros({4}, DType::i32, Device::cpu(3));
  CHECK(z.to_ints() == std::vector<std::int32_t>{0, 0, 0, 0});
  Tensor a = Tensor::from_vector(std::vector<float>{1, 2}, {2});
  Tensor b = Tensor::empty({3}, DType::f32);
  CHECK_THROWS_WITH_AS(copy(b, a), doctest::Contains("shapes or dtypes differ"), Error);
}

TEST_CASE("memory pool enforces its capacity with a clear error and reuses freed blocks") {
  const Device dev = Device::cpu(41);
  set_memory_capacity(dev, 64u << 20);
  MemoryPool& pool = memory_pool(dev);
  {
    Tensor a = Tensor::empty({8 << 20}, DType::f32, dev);  // 32 MiB
    CHECK(pool.in_use() >= (32u << 20));
    CHECK_THROWS_WITH_AS(Tensor::empty({10 << 20}, DType::f32, dev),
                         doctest::Contains("out of memory on cpu:41"), OutOfMemory);
    // The failed allocation lost nothing: `a` is intact and the pool still serves what fits.
    Tensor b = Tensor::empty({4 << 20}, DType::f32, dev);
    CHECK(pool.in_use() >= (48u << 20));
  }
  CHECK(pool.in_use() == 0);
  CHECK(pool.peak() >= (48u << 20));
  const std::size_t cached = pool.cached();
  CHECK(cached >= (48u << 20));
  Tensor again = Tensor::empty({8 << 20}, DType::f32, dev);  // served from the cache
  CHECK(pool.cached() < cached);
  // Cached blocks are released when a new allocation needs the room.
  Tensor big = Tensor::empty({7 << 20}, DType::f32, dev);
  CHECK(pool.in_use() <= pool.capacity());
  CHECK_THROWS_AS(set_memory_capacity(dev, 1u << 20), Error);
}

TEST_CASE("device names parse and print") {
  CHECK(parse_device("cuda:2") == Device::cuda(2));
  CHECK(parse_device("cpu:0").str() == "cpu:0");
  CHECK(parse_device("pinned") == Device::pinned());
  CHECK_THROWS_WITH_AS(parse_device("gpu0"), doctest::Contains("expected host, pinned"), Error);
  CHECK_THROWS_AS(parse_device("cpu:-1"), Error);
}
