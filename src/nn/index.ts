/** Neural-network modules: the Module tree, layers, the UNet and the MLP denoiser. */
export { Module, Parameter, init } from './module.js';
export type { StateDict, StateEntry, StateEntryLike, LoadStateDictOptions, LoadStateDictResult, UnaryModule } from './module.js';
export {
  Linear, Conv2d, GroupNorm, LayerNorm, Embedding, Dropout, SiLU, Identity, Sequential, ModuleList,
} from './layers.js';
export type { InitOptions, Conv2dLayerOptions } from './layers.js';
export {
  UNet, ResBlock, AttnBlock, Downsample, Upsample, DownLevel, UpLevel, MidBlock, UNET_PRESETS, unetPreset,
  unetConfigFromJSON, validateUNetConfig, normGroupsFor, unetNormGroups, unetNormChannels, timestepEmbedding, describeModel,
  unetParameterCount, UNET_LIMITS, presetNormGroups,
} from './unet.js';
export type { UNetConfig, UNetPresetName, UNetInitOptions } from './unet.js';
export { MLPDenoiser, mlpConfig } from './mlp.js';
export type { MLPConfig } from './mlp.js';
export {
  UNet2DModel, UNET2D_DEFAULTS, parseUNet2DConfig, diffusersTimestepEmbedding, renameLegacyAttention, DIFFUSERS_DOWN_BLOCKS,
  DIFFUSERS_UP_BLOCKS,
} from './diffusersUNet.js';
export type { UNet2DConfig } from './diffusersUNet.js';
