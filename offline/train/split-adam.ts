import * as tf from '@tensorflow/tfjs';

type NamedTensor = { name: string; tensor: tf.Tensor };

/**
 * Two Adam optimizers behind one: variables for which `inFirst(name)` holds get the first
 * (its own learning rate), the rest the second. Adam's step ignores the gradient's scale, so a
 * lower rate for part of a model needs its own optimizer, not scaled gradients. Its weights (for
 * checkpoints) are both optimizers' weights, prefixed `0/` and `1/`.
 */
export class SplitAdam extends tf.Optimizer {
  static get className(): string {
    return 'SplitAdam';
  }

  constructor(
    readonly first: tf.AdamOptimizer,
    readonly second: tf.AdamOptimizer,
    private readonly inFirst: (variableName: string) => boolean,
  ) {
    super();
  }

  override applyGradients(grads: tf.NamedTensorMap | NamedTensor[]): void {
    const list = Array.isArray(grads) ? grads : Object.entries(grads).map(([name, tensor]) => ({ name, tensor }));
    const a = list.filter((g) => this.inFirst(g.name));
    const b = list.filter((g) => !this.inFirst(g.name));
    if (a.length) this.first.applyGradients(a);
    if (b.length) this.second.applyGradients(b);
  }

  override async getWeights(): Promise<NamedTensor[]> {
    const [a, b] = await Promise.all([this.first.getWeights(), this.second.getWeights()]);
    return [...a.map((w) => ({ name: `0/${w.name}`, tensor: w.tensor })), ...b.map((w) => ({ name: `1/${w.name}`, tensor: w.tensor }))];
  }

  override async setWeights(weights: NamedTensor[]): Promise<void> {
    const part = (p: string) => weights.filter((w) => w.name.startsWith(p)).map((w) => ({ name: w.name.slice(p.length), tensor: w.tensor }));
    await this.first.setWeights(part('0/'));
    await this.second.setWeights(part('1/'));
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { first: this.first.getConfig(), second: this.second.getConfig() };
  }

  override dispose(): void {
    this.first.dispose();
    this.second.dispose();
  }
}
