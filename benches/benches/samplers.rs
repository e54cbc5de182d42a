//! Selection by the miners (mirrors `core/src/mining`).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use hardmine::{BalancedSampler, Budget, Ohem, SOhem, SplitMix64};
use hardmine_benches::{batch, criterion, N};
use std::hint::black_box;

fn samplers(c: &mut Criterion) {
    let (losses, t) = batch(N);
    let positive: Vec<bool> = t.iter().map(|&v| v == 1.0).collect();
    let mut group = c.benchmark_group("samplers_f32");
    group.throughput(Throughput::Elements(N as u64));
    let ohem = Ohem::<f32, 512>::new(512).expect("valid k");
    group.bench_function(BenchmarkId::new("ohem_top512", N), |b| {
        b.iter(|| black_box(ohem.select(&losses, None)))
    });
    let sampler =
        BalancedSampler::<f32, 512>::new(Budget::new(512, 0.25, None).expect("valid budget"))
            .expect("fits");
    let mut rng = SplitMix64::new(7);
    group.bench_function(BenchmarkId::new("balanced_512", N), |b| {
        b.iter(|| black_box(sampler.sample(&positive, &mut rng)))
    });
    let sohem = SOhem::<f32, 512>::new(512, 4).expect("valid strata");
    group.bench_function(BenchmarkId::new("sohem_512", N), |b| {
        b.iter(|| black_box(sohem.select(&losses, &t, 0.5)))
    });
    group.finish();
}

criterion_group! { name = benches; config = criterion(); targets = samplers }
criterion_main!(benches);
