//! Forward + gradient of the element-wise and GHM losses (mirrors `core/src/loss`, `ghm`).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use hardmine::{BceWithLogits, GhmC, Real, Reduction, SigmoidFocal, SmoothL1, Q16};
use hardmine_benches::{batch, criterion, N};
use std::hint::black_box;

fn losses(c: &mut Criterion) {
    let (x, t) = batch(N);
    let mut g = vec![0.0f32; N];
    let mut group = c.benchmark_group("losses_f32");
    group.throughput(Throughput::Elements(N as u64));
    let bce = BceWithLogits::new().with_reduction(Reduction::Sum);
    group.bench_function(BenchmarkId::new("bce", N), |b| {
        b.iter(|| black_box(bce.value_and_grad(&x, &t, None, &mut g)))
    });
    let focal = SigmoidFocal::new(0.25f32, 2.0)
        .expect("valid parameters")
        .with_reduction(Reduction::Sum);
    group.bench_function(BenchmarkId::new("focal", N), |b| {
        b.iter(|| black_box(focal.value_and_grad(&x, &t, &mut g)))
    });
    let sl1 = SmoothL1::new(1.0f32 / 9.0)
        .expect("valid beta")
        .with_reduction(Reduction::Sum);
    group.bench_function(BenchmarkId::new("smooth_l1", N), |b| {
        b.iter(|| black_box(sl1.value_and_grad(&x, &t, &mut g)))
    });
    let mut ghm = GhmC::<f32, 30>::new(30, 0.75, 1.0).expect("valid parameters");
    group.bench_function(BenchmarkId::new("ghm_c", N), |b| {
        b.iter(|| black_box(ghm.value_and_grad(&x, &t, None, &mut g)))
    });
    group.finish();

    let xq: Vec<Q16> = x.iter().map(|&v| Q16::from_f64(f64::from(v))).collect();
    let tq: Vec<Q16> = t.iter().map(|&v| Q16::from_f64(f64::from(v))).collect();
    let mut gq = vec![Q16::ZERO; N];
    let mut group = c.benchmark_group("losses_q16");
    group.throughput(Throughput::Elements(N as u64));
    let focal = SigmoidFocal::new(Q16::from_f64(0.25), Q16::from_f64(2.0))
        .expect("valid parameters")
        .with_reduction(Reduction::Sum);
    group.bench_function(BenchmarkId::new("focal", N), |b| {
        b.iter(|| black_box(focal.value_and_grad(&xq, &tq, &mut gq)))
    });
    group.finish();
}

criterion_group! { name = benches; config = criterion(); targets = losses }
criterion_main!(benches);
