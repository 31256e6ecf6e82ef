// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";

/// @title DepinToken
/// @notice The network's ERC-20 (with EIP-2612 permit). After the genesis allocation, new tokens
/// come only from the reward distributor, and never more per epoch than the emission schedule:
/// `emissionFor(epoch) = initialEpochEmission >> (epoch / halvingInterval)` — a fixed amount per
/// epoch that halves every `halvingInterval` epochs. The schedule and the minter are immutable.
contract DepinToken is ERC20, ERC20Permit {
    /// @notice Raised when anyone but the reward distributor tries to mint.
    error TokenUnauthorizedMinter(address caller);
    /// @notice Raised when a mint would take an epoch past its emission.
    error TokenEmissionExceeded(uint64 epoch, uint256 requested, uint256 remaining);
    /// @notice Raised when minting for an epoch before the latest one minted.
    error TokenEpochNotIncreasing(uint64 epoch, uint64 lastMintEpoch);
    /// @notice Raised when the schedule is not usable.
    error TokenInvalidSchedule();

    /// @notice Emitted after epoch tokens are minted.
    event EpochEmissionMinted(uint64 indexed epoch, address indexed to, uint256 amount);

    address private immutable _minter;
    uint256 private immutable _initialEpochEmission;
    uint64 private immutable _halvingInterval;
    // Epochs are minted in increasing order, so one packed slot tracks the latest epoch's mint.
    uint64 private _lastMintEpoch;
    uint192 private _mintedInLastEpoch;

    /// @param name_ ERC-20 name (also the permit domain name)
    /// @param symbol_ ERC-20 symbol
    /// @param minter_ the only address allowed to mint epoch emission (the RewardDistributor)
    /// @param genesisHolder_ receives the genesis allocation (bootstraps validator bonds)
    /// @param genesisSupply_ tokens minted at deployment
    /// @param initialEpochEmission_ tokens per epoch before the first halving
    /// @param halvingInterval_ epochs between halvings (> 0)
    constructor(
        string memory name_,
        string memory symbol_,
        address minter_,
        address genesisHolder_,
        uint256 genesisSupply_,
        uint256 initialEpochEmission_,
        uint64 halvingInterval_
    ) ERC20(name_, symbol_) ERC20Permit(name_) {
        if (halvingInterval_ == 0 || minter_ == address(0) || initialEpochEmission_ > type(uint192).max) {
            revert TokenInvalidSchedule();
        }
        _minter = minter_;
        _initialEpochEmission = initialEpochEmission_;
        _halvingInterval = halvingInterval_;
        if (genesisSupply_ > 0) _mint(genesisHolder_, genesisSupply_);
    }

    /// @notice The only address allowed to mint epoch emission.
    function minter() external view returns (address) {
        return _minter;
    }

    /// @notice Tokens per epoch before the first halving.
    function initialEpochEmission() external view returns (uint256) {
        return _initialEpochEmission;
    }

    /// @notice Epochs between two halvings.
    function halvingInterval() external view returns (uint64) {
        return _halvingInterval;
    }

    /// @notice The most that may ever be minted for `epoch`.
    function emissionFor(uint64 epoch) public view returns (uint256) {
        uint256 halvings = epoch / _halvingInterval;
        if (halvings >= 256) return 0;
        return _initialEpochEmission >> halvings;
    }

    /// @notice Tokens already minted for `epoch` (0 for any epoch other than the latest minted).
    function mintedInEpoch(uint64 epoch) external view returns (uint256) {
        return epoch == _lastMintEpoch ? _mintedInLastEpoch : 0;
    }

    /// @notice Mints `amount` of `epoch`'s emission to `to`. Only the reward distributor may call,
    /// for the latest epoch minted or a later one.
    /// @param epoch the epoch whose emission is used
    /// @param to receiver (the distributor itself, which pays claims)
    /// @param amount tokens to mint; with earlier mints for the epoch at most `emissionFor(epoch)`
    function mintEpochEmission(uint64 epoch, address to, uint256 amount) external {
        if (msg.sender != _minter) revert TokenUnauthorizedMinter(msg.sender);
        uint64 last = _lastMintEpoch;
        if (epoch < last) revert TokenEpochNotIncreasing(epoch, last);
        uint256 minted = epoch == last ? _mintedInLastEpoch : 0;
        uint256 cap = emissionFor(epoch);
        // minted <= cap always holds: every mint below checks it, and the cap of an epoch never changes
        if (amount > cap - minted) revert TokenEmissionExceeded(epoch, amount, cap - minted);
        // cap <= type(uint192).max is checked at construction, so the sum fits
        _lastMintEpoch = epoch;
        _mintedInLastEpoch = uint192(minted + amount);
        _mint(to, amount);
        emit EpochEmissionMinted(epoch, to, amount);
    }
}
