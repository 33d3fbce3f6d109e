/**
 * diffuse models and schedules as diffusers UNet2DModel configs, state dicts and scheduler configs.
 *
 * diffuse's UNet is the DDPM/ADM layout, which UNet2DModel expresses block for block (DownBlock2D or
 * AttnDownBlock2D per level, conv down/upsampling, a mid block with or without attention, class embeddings with
 * the null class as one more row). What UNet2DModel cannot express, and what is refused with the reason:
 *   - norm group counts that vary between norms: UNet2DModel has one norm_num_groups. The presets (and so
 *     `diffuse train`'s models) use one count (normGroupRule 'fixed'); configs without normGroupRule pick each
 *     norm's count from its channels (normGroupsFor), which for the old presets' normGroups 32 gave 8/16/24/32
 *     groups on the tiny preset's 32/64/96/128-channel norms. Such a config exports only where that rule happens
 *     to give one count everywhere.
 *   - 2×2 average-pool downsampling (`downsample: 'avgpool'`): UNet2DModel's down blocks downsample by a conv.
 *   - channelMult[0] ≠ 1: the time embedding is 4 × block_out_channels[0] in UNet2DModel, 4 × modelChannels here.
 *   - attention with a different head size per level (numHeads fixed, channel counts differing).
 * Timestep embeddings agree to float32 rounding (diffuse computes its own in float64).
 */
import type { UNet, UNetConfig } from '../nn/unet.js';
import { unetNormChannels, unetNormGroups } from '../nn/unet.js';
import type { UNet2DConfig } from '../nn/diffusersUNet.js';
import { UNET2D_DEFAULTS } from '../nn/diffusersUNet.js';
import { type ScheduleConfig, betasFor } from '../diffusion/schedules.js';
import type { PredictionType } from '../diffusion/parameterization.js';
import type { VarianceType } from '../diffusion/reverse.js';

export class NotExpressibleError extends Error {
  override name = 'NotExpressibleError';
}

const no = (msg: string): never => { throw new NotExpressibleError(`diffusers UNet2DModel cannot express this model: ${msg}`); };

/** The UNet2DModel config of a diffuse UNet config, or a NotExpressibleError saying why not. */
export function unet2DConfigFor(c: UNetConfig): UNet2DConfig {
  if (c.downsample !== 'conv') no("downsample 'avgpool' (UNet2DModel's down blocks downsample by a strided conv)");
  if (c.channelMult[0] !== 1) no(`channelMult[0] = ${c.channelMult[0]} (UNet2DModel's time embedding is 4 × block_out_channels[0])`);
  const groups = new Map<number, number>();
  for (const n of unetNormChannels(c)) groups.set(n, unetNormGroups(c, n));
  const counts = [...new Set(groups.values())];
  if (counts.length > 1) {
    no(`its norms use different group counts (${[...groups].map(([n, g]) => `${g} for ${n} channels`).join(', ')}); ` +
      `UNet2DModel has one norm_num_groups (a model trained with one group count, --norm-groups, exports)`);
  }
  const levels = c.channelMult.length, attnLevels = new Set(c.attentionLevels);
  const withAttn = [...attnLevels, ...(c.midAttention ? [levels - 1] : [])];
  const headDims = new Set(withAttn.map((l) => (c.modelChannels * c.channelMult[l]) / c.numHeads));
  if (headDims.size > 1) no(`attention head sizes differ between levels (${[...headDims].join(', ')}); UNet2DModel has one attention_head_dim`);
  const block = (i: number) => c.modelChannels * c.channelMult[i];
  return {
    ...UNET2D_DEFAULTS,
    sample_size: c.imageSize,
    in_channels: c.inChannels,
    out_channels: c.learnSigma ? 2 * c.inChannels : c.inChannels,
    down_block_types: c.channelMult.map((_, i) => (attnLevels.has(i) ? 'AttnDownBlock2D' : 'DownBlock2D')),
    up_block_types: c.channelMult.map((_, i) => (attnLevels.has(levels - 1 - i) ? 'AttnUpBlock2D' : 'UpBlock2D')),
    block_out_channels: c.channelMult.map((_, i) => block(i)),
    layers_per_block: c.numResBlocks,
    dropout: c.dropout,
    attention_head_dim: headDims.size ? [...headDims][0] : null,
    norm_num_groups: counts[0],
    norm_eps: 1e-5,
    add_attention: c.midAttention,
    num_class_embeds: c.numClasses > 0 ? c.numClasses + 1 : null,
  };
}

type Entry = { shape: readonly number[]; data: Float32Array };

/** The UNet's weights under UNet2DModel's names (qkv split into to_q/to_k/to_v, 1×1 convs as linear weights). */
export function unet2DStateFor(model: UNet): Map<string, Entry> {
  const c = model.config, levels = c.channelMult.length, out = new Map<string, Entry>();
  const put = (name: string, shape: readonly number[], data: Float32Array) => out.set(name, { shape: [...shape], data: Float32Array.from(data) });
  const rename = (name: string): string | null => {
    const rules: [RegExp, string | ((...m: string[]) => string)][] = [
      [/^time_embed\.0\./, 'time_embedding.linear_1.'],
      [/^time_embed\.2\./, 'time_embedding.linear_2.'],
      [/^label_emb\./, 'class_embedding.'],
      [/^norm_out\./, 'conv_norm_out.'],
      [/^down\.(\d+)\.block\.(\d+)\./, (_, i, j) => `down_blocks.${i}.resnets.${j}.`],
      [/^down\.(\d+)\.attn\.(\d+)\./, (_, i, j) => `down_blocks.${i}.attentions.${j}.`],
      [/^down\.(\d+)\.downsample\./, (_, i) => `down_blocks.${i}.downsamplers.0.`],
      [/^mid\.block_1\./, 'mid_block.resnets.0.'],
      [/^mid\.block_2\./, 'mid_block.resnets.1.'],
      [/^mid\.attn_1\./, 'mid_block.attentions.0.'],
      [/^up\.(\d+)\.block\.(\d+)\./, (_, i, j) => `up_blocks.${levels - 1 - Number(i)}.resnets.${j}.`],
      [/^up\.(\d+)\.attn\.(\d+)\./, (_, i, j) => `up_blocks.${levels - 1 - Number(i)}.attentions.${j}.`],
      [/^up\.(\d+)\.upsample\./, (_, i) => `up_blocks.${levels - 1 - Number(i)}.upsamplers.0.`],
    ];
    let n = name;
    for (const [re, to] of rules) n = n.replace(re, to as string);
    return n.replace(/\.temb_proj\./, '.time_emb_proj.').replace(/\.skip\./, '.conv_shortcut.')
      .replace(/(attentions\.\d+)\.norm\./, '$1.group_norm.').replace(/(attentions\.\d+)\.proj_out\./, '$1.to_out.0.');
  };
  for (const [name, p] of model.namedParameters()) {
    const n = rename(name)!;
    const data = p.values;
    if (/attentions\.\d+\.qkv\.weight$/.test(n)) {
      const [c3, cin] = p.shape, ch = c3 / 3;
      ['to_q', 'to_k', 'to_v'].forEach((k, i) => put(n.replace('qkv.weight', `${k}.weight`), [ch, cin], data.subarray(i * ch * cin, (i + 1) * ch * cin)));
    } else if (/attentions\.\d+\.qkv\.bias$/.test(n)) {
      const ch = p.shape[0] / 3;
      ['to_q', 'to_k', 'to_v'].forEach((k, i) => put(n.replace('qkv.bias', `${k}.bias`), [ch], data.subarray(i * ch, (i + 1) * ch)));
    } else if (/attentions\.\d+\.to_out\.0\.weight$/.test(n)) {
      put(n, [p.shape[0], p.shape[1]], data);
    } else {
      put(n, p.shape, data);
    }
  }
  return out;
}

/** diffusers' beta_schedule fields for a diffuse schedule (all kinds are expressible). */
function scheduleFields(s: ScheduleConfig): Record<string, unknown> {
  const zsnr = s.rescaleZeroTerminalSnr ? { rescale_betas_zero_snr: true } : {};
  switch (s.kind) {
    case 'linear': return { num_train_timesteps: s.T, beta_schedule: 'linear', beta_start: s.betaStart ?? 1e-4, beta_end: s.betaEnd ?? 0.02, ...zsnr };
    case 'scaledLinear': return { num_train_timesteps: s.T, beta_schedule: 'scaled_linear', beta_start: s.betaStart ?? 0.00085, beta_end: s.betaEnd ?? 0.012, ...zsnr };
    case 'sigmoid': return { num_train_timesteps: s.T, beta_schedule: 'sigmoid', beta_start: s.betaStart ?? 1e-4, beta_end: s.betaEnd ?? 0.02, ...zsnr };
    case 'cosine':
      // squaredcos_cap_v2 is s = 0.008 with β capped at 0.999; other values go as the β's themselves.
      if ((s.s ?? 0.008) !== 0.008 || (s.maxBeta ?? 0.999) !== 0.999) return { num_train_timesteps: s.T, trained_betas: [...betasFor(s)], ...zsnr };
      return { num_train_timesteps: s.T, beta_schedule: 'squaredcos_cap_v2', ...zsnr };
    case 'custom': return { num_train_timesteps: s.betas.length, trained_betas: [...s.betas], ...zsnr };
  }
}

/** A DDPMScheduler config that samples a diffuse model as diffuse's DDPM does (no clipping, the model's variance). */
export function ddpmSchedulerConfigFor(schedule: ScheduleConfig, prediction: PredictionType, variance: VarianceType): Record<string, unknown> {
  return {
    _class_name: 'DDPMScheduler',
    ...scheduleFields(schedule),
    prediction_type: { epsilon: 'epsilon', x0: 'sample', v: 'v_prediction' }[prediction],
    variance_type: { fixedLarge: 'fixed_large', fixedSmall: 'fixed_small', learnedRange: 'learned_range' }[variance],
    clip_sample: false,
    timestep_spacing: 'leading',
    steps_offset: 0,
  };
}
